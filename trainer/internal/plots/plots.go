// Package plots draws the charts of the evaluation report with
// gonum.org/v1/plot: training curves, a confusion-matrix heat map and
// grouped bar charts, rendered to PNG.
package plots

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// DPI of the rendered PNGs; sizes are given in vg units (points).
const DPI = 110

// Series is one named sequence of values; a nil Color picks one from the
// standard plotutil palette.
type Series struct {
	Name   string
	Values []float64
	Color  color.Color
}

// Figure is one or more plots laid out side by side.
type Figure struct {
	Panels []*plot.Plot
	// Widths are the panels' shares of the figure width; nil means equal.
	Widths []float64
}

// PNG renders the figure w wide and h high.
func (f *Figure) PNG(w, h vg.Length) ([]byte, error) {
	if len(f.Panels) == 0 {
		return nil, errors.New("plots: nothing to render")
	}
	if f.Widths != nil && len(f.Widths) != len(f.Panels) {
		return nil, fmt.Errorf("plots: %d widths for %d panels", len(f.Widths), len(f.Panels))
	}
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(DPI))
	dc := draw.New(c)
	// A white background: PNGs are often viewed on dark pages.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	total := 0.0
	for i := range f.Panels {
		total += f.share(i)
	}
	const margin = 6 // points of white around each panel
	left := vg.Length(0)
	for i, p := range f.Panels {
		pw := w * vg.Length(f.share(i)/total)
		p.Draw(draw.Crop(dc, left+margin, left+pw-w-margin, margin, -margin))
		left += pw
	}
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(&b); err != nil {
		return nil, fmt.Errorf("plots: encode png: %w", err)
	}
	return b.Bytes(), nil
}

func (f *Figure) share(i int) float64 {
	if f.Widths == nil {
		return 1
	}
	return f.Widths[i]
}

// newPlot returns a plot with a title, axis labels and the house style.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.X.Label.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.TextStyle.Font.Size = vg.Points(11)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	return p
}

// TrainingCurves returns a loss panel and an accuracy panel over epochs,
// each with the training and validation series. Accuracies are fractions
// and are shown in per cent. NaN values (an epoch without validation) are
// left out of the lines.
func TrainingCurves(epochs, trainLoss, valLoss, trainAcc, valAcc []float64) (*Figure, error) {
	n := len(epochs)
	for _, s := range [][]float64{trainLoss, valLoss, trainAcc, valAcc} {
		if len(s) != n {
			return nil, fmt.Errorf("plots: %d epochs but a series of %d values", n, len(s))
		}
	}
	if n == 0 {
		return nil, errors.New("plots: no epochs to plot")
	}
	loss := newPlot("Loss", "epoch", "cross-entropy loss")
	acc := newPlot("Accuracy", "epoch", "accuracy (%)")
	for _, panel := range []struct {
		p          *plot.Plot
		train, val []float64
		scale      float64
	}{{loss, trainLoss, valLoss, 1}, {acc, trainAcc, valAcc, 100}} {
		for i, s := range []struct {
			name string
			v    []float64
		}{{"train", panel.train}, {"validation", panel.val}} {
			xys := make(plotter.XYs, 0, n)
			for j, v := range s.v {
				if !math.IsNaN(v) && !math.IsInf(v, 0) {
					xys = append(xys, plotter.XY{X: epochs[j], Y: v * panel.scale})
				}
			}
			if len(xys) == 0 {
				continue
			}
			line, points, err := plotter.NewLinePoints(xys)
			if err != nil {
				return nil, fmt.Errorf("plots: %w", err)
			}
			line.Color = plotutil.Color(i)
			line.Width = vg.Points(1.5)
			points.Color = plotutil.Color(i)
			points.Shape = plotutil.Shape(i)
			points.Radius = vg.Points(2)
			if i == 1 {
				line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
			}
			panel.p.Add(line, points)
			panel.p.Legend.Add(s.name, line, points)
		}
		panel.p.Add(plotter.NewGrid())
	}
	loss.Legend.Top = true
	acc.Legend.Top = false // accuracy rises: keep the legend clear of it
	return &Figure{Panels: []*plot.Plot{loss, acc}}, nil
}

// GroupedBars draws one group of bars per category, one bar per series,
// with a legend naming the series. Bars are rectangles in data units, so
// they keep their proportions at any figure size.
func GroupedBars(title, yLabel string, categories []string, series []Series) (*Figure, error) {
	if len(categories) == 0 || len(series) == 0 {
		return nil, errors.New("plots: grouped bars need categories and series")
	}
	p := newPlot(title, "", yLabel)
	p.Add(plotter.NewGrid())
	const group = 0.8 // share of a category's slot the bars fill
	w := group / float64(len(series))
	top := 0.0
	for i, s := range series {
		if len(s.Values) != len(categories) {
			return nil, fmt.Errorf("plots: series %q has %d values for %d categories", s.Name, len(s.Values), len(categories))
		}
		rings := make([]plotter.XYer, len(s.Values))
		for c, v := range s.Values {
			if math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return nil, fmt.Errorf("plots: series %q: value %g for %q is not a non-negative number", s.Name, v, categories[c])
			}
			x0 := float64(c) - group/2 + float64(i)*w
			rings[c] = plotter.XYs{{X: x0, Y: 0}, {X: x0 + w, Y: 0}, {X: x0 + w, Y: v}, {X: x0, Y: v}}
			top = max(top, v)
		}
		bars, err := plotter.NewPolygon(rings...)
		if err != nil {
			return nil, fmt.Errorf("plots: series %q: %w", s.Name, err)
		}
		bars.Color = s.Color
		if bars.Color == nil {
			bars.Color = plotutil.Color(i)
		}
		bars.LineStyle.Width = vg.Points(0.5)
		p.Add(bars)
		p.Legend.Add(s.Name, bars)
	}
	p.Legend.Top = true
	p.NominalX(categories...)
	p.X.Min, p.X.Max = -0.5, float64(len(categories))-0.5
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YCenter
	p.Y.Min = 0
	p.Y.Max = 1.18 * top // headroom for the legend
	if top == 0 {
		p.Y.Max = 1
	}
	return &Figure{Panels: []*plot.Plot{p}}, nil
}

// confusionGrid presents a confusion matrix to a heat map: column c is
// the predicted class at x = c, row r the true class drawn from the top
// (y = k−1−r), each cell coloured by its share of the true class.
type confusionGrid struct {
	cm  [][]int
	row []int // row sums
}

func (g confusionGrid) Dims() (c, r int) { return len(g.cm), len(g.cm) }
func (g confusionGrid) X(c int) float64  { return float64(c) }
func (g confusionGrid) Y(r int) float64  { return float64(r) }
func (g confusionGrid) Z(c, r int) float64 {
	t := len(g.cm) - 1 - r
	if g.row[t] == 0 {
		return 0
	}
	return float64(g.cm[t][c]) / float64(g.row[t])
}

// classTicks labels integer positions with class names; reversed counts
// from the top so that the first class heads the y axis.
type classTicks struct {
	names    []string
	reversed bool
}

func (t classTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := make([]plot.Tick, len(t.names))
	for i, name := range t.names {
		v := float64(i)
		if t.reversed {
			v = float64(len(t.names) - 1 - i)
		}
		ticks[i] = plot.Tick{Value: v, Label: name}
	}
	return ticks
}

// blues is a white-to-navy colour map whose luminance falls linearly.
func blues() (palette.ColorMap, error) {
	return moreland.NewLuminance([]color.Color{
		color.NRGBA{8, 48, 107, 255},
		color.NRGBA{33, 113, 181, 255},
		color.NRGBA{107, 174, 214, 255},
		color.NRGBA{198, 219, 239, 255},
		color.NRGBA{247, 251, 255, 255},
	})
}

// ConfusionMatrix draws cm (rows = true class, columns = predicted) as a
// heat map with the count written in every cell and class names on both
// axes. Cells are coloured by their share of the true class, so that the
// diagonal reads as per-class recall; a colour bar beside it is the
// legend of that scale.
func ConfusionMatrix(title string, cm [][]int, classes []string) (*Figure, error) {
	k := len(classes)
	if k == 0 || len(cm) != k {
		return nil, fmt.Errorf("plots: confusion matrix of %d rows for %d classes", len(cm), k)
	}
	g := confusionGrid{cm: cm, row: make([]int, k)}
	for t, row := range cm {
		if len(row) != k {
			return nil, fmt.Errorf("plots: confusion row %d has %d columns, want %d", t, len(row), k)
		}
		for _, n := range row {
			if n < 0 {
				return nil, fmt.Errorf("plots: negative count in confusion row %d", t)
			}
			g.row[t] += n
		}
	}
	cmap, err := blues()
	if err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	cmap = palette.Reverse(cmap) // white for 0, navy for 1
	cmap.SetMin(0)
	cmap.SetMax(1)

	heat := newPlot(title, "predicted class", "true class")
	hm := plotter.NewHeatMap(g, cmap.Palette(256))
	hm.Min, hm.Max = 0, 1
	heat.Add(hm)

	// Counts in the cells: white on dark cells, black on light ones.
	var xys plotter.XYs
	var labels []string
	var styles []text.Style
	base := text.Style{
		Font:    plot.DefaultFont,
		XAlign:  draw.XCenter,
		YAlign:  draw.YCenter,
		Handler: heat.Title.TextStyle.Handler,
	}
	base.Font.Size = vg.Points(max(7, 14-float64(k)/3))
	for r := range k {
		for c := range k {
			st := base
			st.Color = color.Black
			if g.Z(c, r) > 0.5 {
				st.Color = color.White
			}
			xys = append(xys, plotter.XY{X: float64(c), Y: float64(r)})
			labels = append(labels, fmt.Sprint(cm[k-1-r][c]))
			styles = append(styles, st)
		}
	}
	lab, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: labels})
	if err != nil {
		return nil, fmt.Errorf("plots: %w", err)
	}
	lab.TextStyle = styles
	heat.Add(lab)

	heat.X.Tick.Marker = classTicks{names: classes}
	heat.Y.Tick.Marker = classTicks{names: classes, reversed: true}
	heat.X.Tick.Label.Rotation = math.Pi / 4
	heat.X.Tick.Label.XAlign = draw.XRight
	heat.X.Tick.Label.YAlign = draw.YCenter
	heat.X.Min, heat.X.Max = -0.5, float64(k)-0.5
	heat.Y.Min, heat.Y.Max = -0.5, float64(k)-0.5

	bar := newPlot("", "", "share of the true class")
	bar.Add(&plotter.ColorBar{ColorMap: cmap, Vertical: true})
	bar.HideX()
	return &Figure{Panels: []*plot.Plot{heat, bar}, Widths: []float64{0.85, 0.15}}, nil
}
