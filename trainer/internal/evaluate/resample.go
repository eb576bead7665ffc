package evaluate

import (
	"fmt"
	"image"

	"golang.org/x/image/draw"

	"github.com/cifarnet-go/cifarnet/trainer/internal/cifar"
)

// Resampled returns a copy of the 32×32 set as the page would see it in a
// photo: each image is enlarged factor times with Catmull-Rom (smooth, with
// none of the JPEG-derived copy's 8×8 block edges) and brought back to
// 32×32 by models.ModelInput, the page's own resize. The accuracy on it
// shows how much the model depends on the exact pixels it was trained on.
func Resampled(set *cifar.Set, factor int) (*cifar.Set, error) {
	if factor < 1 {
		return nil, fmt.Errorf("resample: factor %d must be at least 1", factor)
	}
	const side, plane = cifar.Side, cifar.Side * cifar.Side
	out := &cifar.Set{Images: make([]byte, len(set.Images)), Labels: set.Labels, Classes: set.Classes}
	small := image.NewNRGBA(image.Rect(0, 0, side, side))
	big := image.NewNRGBA(image.Rect(0, 0, side*factor, side*factor))
	for i := range set.Len() {
		chw := set.Image(i)
		for p := range plane {
			small.Pix[4*p], small.Pix[4*p+1], small.Pix[4*p+2], small.Pix[4*p+3] = chw[p], chw[plane+p], chw[2*plane+p], 255
		}
		draw.CatmullRom.Scale(big, big.Bounds(), small, small.Bounds(), draw.Src, nil)
		cifar.Planes(out.Images[i*cifar.ImageSize:(i+1)*cifar.ImageSize], big, side)
	}
	return out, nil
}
