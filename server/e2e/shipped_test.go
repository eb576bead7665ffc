package e2e

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/cifarnet-go/cifarnet/models"
	"github.com/cifarnet-go/cifarnet/server/app"
)

// TestShippedModel serves the site as build.sh makes it, from the
// repository's own models/zoo, and classifies the ten sample images (the
// first test image of each class) with the shipped default model: every
// probability must equal native Go's, and the model must name most of them
// right. With CIFARNET_SCREENSHOT set it saves the page as
// <name>-shipped.png, the README's screenshot.
func TestShippedModel(t *testing.T) {
	ctx := newPage(t)
	dist, name := openShipped(t, ctx)
	site.models["shipped"] = filepath.Join(dist, "models", name)
	// Every shipped weight file can be chosen in the page.
	files, err := filepath.Glob(filepath.Join(site.repo, "models", "zoo", "*", "*"+models.FileExt))
	if err != nil || len(files) == 0 {
		t.Fatalf("no weight files in models/zoo (%v)", err)
	}
	offered, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
		`Array.from(document.querySelectorAll('#model-select option')).map((o) => o.title.split(':')[0])`))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !slices.Contains(offered, filepath.Base(f)) {
			t.Errorf("the page's model list %q lacks %s", offered, filepath.Base(f))
		}
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

// shippedDefault returns the file name of the model the assembled site
// in dist marks as its default, as the page sees it in the manifest.
// openShipped builds the site from the repository's own models/zoo, as
// build.sh does, serves it and opens it with its default model ready; it
// returns the site's folder and that model's file name.
func openShipped(t *testing.T, ctx context.Context) (dist, name string) {
	t.Helper()
	dist = filepath.Join(t.TempDir(), "dist")
	if err := assemble(dist, filepath.Join(site.repo, "models", "zoo")); err != nil {
		t.Fatal(err)
	}
	name = shippedDefault(t, dist)
	srv := serveDist(t, dist, nil)
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	if st := waitStatus(t, ctx, name); st.State != "ready" {
		t.Fatalf("shipped model %s not ready: %+v", name, st)
	}
	return dist, name
}

func shippedDefault(t *testing.T, dist string) string {
	t.Helper()
	list, err := app.ListModels(filepath.Join(dist, "models"), "models/")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range list.Models {
		if m.Default {
			return m.File
		}
	}
	t.Fatalf("the site lists no default model: %+v", list.Models)
	return ""
}
