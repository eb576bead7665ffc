package e2e

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cifarnet-go/cifarnet/models"
)

// TestShippedModel serves the site as build.sh makes it, from the
// repository's own models/zoo, and classifies the ten sample images (the
// first test image of each class) with the shipped default model: every
// probability must equal native Go's, and the model must name most of them
// right. With CIFARNET_SCREENSHOT set it saves the page as
// <name>-shipped.png, the README's screenshot.
func TestShippedModel(t *testing.T) {
	ctx := newPage(t)
	zoo := filepath.Join(site.repo, "models", "zoo")
	name, path := shippedDefault(t, zoo)
	site.models["shipped"] = path
	dist := filepath.Join(t.TempDir(), "dist")
	if err := assemble(dist, zoo); err != nil {
		t.Fatal(err)
	}
	srv := serveDist(t, dist, nil)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if st := waitStatus(t, ctx, name); st.State != "ready" {
		t.Fatalf("shipped model %s not ready: %+v", name, st)
	}
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](
		`document.querySelectorAll('.sample').forEach((s) => s.click())`)); err != nil {
		t.Fatal(err)
	}
	cards := waitCards(t, ctx, len(models.CIFAR10Classes))
	right := 0
	for _, c := range cards {
		class := strings.TrimSuffix(c.File, ".png")
		_, data := sample(t, class)
		checkCard(t, c, "shipped", data)
		if c.TopLabel == class {
			right++
		}
	}
	t.Logf("%s names %d of the %d samples right", name, right, len(cards))
	if right < 8 {
		t.Errorf("the shipped model names only %d of the %d samples right", right, len(cards))
	}
	noCSPViolations(t, ctx)
	screenshot(t, ctx, "-shipped")
	checkTTASwitch(t, ctx)
}

// checkTTASwitch unticks the page's test-time augmentation box, when the
// model has one, and checks that the next result is the plain forward
// pass's; the box must be hidden for a model without TTA.
func checkTTASwitch(t *testing.T, ctx context.Context) {
	t.Helper()
	f, err := models.ReadFile(site.models["shipped"])
	if err != nil {
		t.Fatal(err)
	}
	hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('tta-choice').hidden`))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Meta.Inference.TTA) == 0 {
		if !hidden {
			t.Error("the TTA box shows for a model without test-time augmentation")
		}
		return
	}
	if hidden {
		t.Fatal("the TTA box is hidden for a model with test-time augmentation")
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#tta"))); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](`!document.getElementById('tta').checked`)); err != nil {
		t.Fatal(err)
	}
	n := len(models.CIFAR10Classes)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-sample="ship"]`))); err != nil {
		t.Fatal(err)
	}
	c := waitCards(t, ctx, n+1)[n]
	_, data := sample(t, "ship")
	want, _ := nativeProbsTTA(t, "shipped", data, false)
	if len(c.Probs) != len(want) {
		t.Fatalf("%d probabilities, want %d", len(c.Probs), len(want))
	}
	for i := range want {
		if d := math.Abs(float64(c.Probs[i] - want[i])); !(d <= tolerance) {
			t.Errorf("TTA off: p[%d] = %.7f in the browser, %.7f natively without TTA", i, c.Probs[i], want[i])
		}
	}
}

// shippedDefault returns the file name and path of the model zoo/DEFAULT
// names: a weight file (zoo/<id>/<file>) or a model id (zoo/<id>/<id>.cnw).
func shippedDefault(t *testing.T, zoo string) (name, path string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(zoo, "DEFAULT"))
	if err != nil {
		t.Fatal(err)
	}
	name = strings.TrimSpace(string(b))
	if !strings.HasSuffix(name, models.FileExt) {
		name += models.FileExt
	}
	m, err := filepath.Glob(filepath.Join(zoo, "*", name))
	if err != nil || len(m) != 1 {
		t.Fatalf("zoo/DEFAULT names %s: found %v (%v)", name, m, err)
	}
	return name, m[0]
}
