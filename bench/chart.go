package main

import (
	"fmt"
	"os"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// drawChart writes a PNG of grouped bar charts: one row per figure
// (records/s, CPU µs/record, peak RSS), one column per encoding of the
// first shape, one group per system and one bar per broker; then, when the
// paced scenarios ran, a row of the exporters' share of CPU per record at
// the lowest rate with the floor estimate as a line. The keyed runs are in
// the tables only.
func drawChart(path string, results []runResult, o options, floor *floorCost) error {
	r := report{opts: o, results: results}
	var brokers, encodings []string
	var shape string
	for _, res := range results {
		if res.Spec.Keys > 0 || res.Spec.Saturation || res.Spec.Rate > 0 {
			continue
		}
		if shape == "" {
			shape = res.Spec.Shape
		}
		if !slices.Contains(brokers, res.Spec.BrokerName) {
			brokers = append(brokers, res.Spec.BrokerName)
		}
		if !slices.Contains(encodings, res.Spec.Encoding) {
			encodings = append(encodings, res.Spec.Encoding)
		}
	}
	var systems []string
	for _, s := range o.systems {
		for _, res := range results {
			if res.Spec.System == s && res.Spec.Keys == 0 && res.Spec.Rate == 0 && (res.Spec.Saturation == (s == sysOursDefaults)) {
				systems = append(systems, s)
				break
			}
		}
	}
	panel := func(title, ylabel, enc string, value func(runResult) float64, skip func(string) bool) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("%s, %s %s", title, shape, enc)
		p.Y.Label.Text = ylabel
		p.Y.Min = 0
		p.NominalX(systems...)
		p.X.Tick.Label.Rotation = 0.35
		p.X.Tick.Label.XAlign = draw.XRight
		p.Legend.Top = true
		p.Legend.Left = false
		w := vg.Points(50 / float64(max(1, len(brokers))))
		var top float64
		defer func() { p.Y.Max = top * 1.35 }() // room for the legend
		for i, bn := range brokers {
			s := scenario{broker: bn, shape: shape, encoding: enc, partitions: partitions}
			vals := make(plotter.Values, len(systems))
			for j, sys := range systems {
				at := s
				if sys == sysOursDefaults {
					at.saturation = true // it runs in the saturation scenario only
				}
				if skip != nil && skip(sys) {
					continue
				}
				if res, ok := r.find(at, sys); ok {
					vals[j] = value(res)
					top = max(top, vals[j])
				}
			}
			if err := addBars(p, vals, w, i, len(brokers), bn); err != nil {
				return nil, err
			}
		}
		return p, nil
	}
	rows := []struct {
		title, ylabel string
		value         func(runResult) float64
		skip          func(string) bool
	}{
		{"Log records per second", "records/s", func(res runResult) float64 { return res.recordsPerSec() }, nil},
		// contrib-per-record's 20-160 µs would flatten every other bar.
		{"CPU per record (lower is better; contrib-per-record: see tables)", "CPU µs/record",
			func(res runResult) float64 { return res.cpuMicrosPerRecord() }, func(s string) bool { return s == sysContribPerRecord }},
		{"Peak RSS (lower is better; kafkabatcher-defaults: saturation runs)", "MiB", func(res runResult) float64 { return res.peakRSSMiB() }, nil},
	}
	var grid [][]*plot.Plot
	if len(encodings) > 0 {
		for _, row := range rows {
			var line []*plot.Plot
			for _, enc := range encodings {
				p, err := panel(row.title, row.ylabel, enc, row.value, row.skip)
				if err != nil {
					return err
				}
				line = append(line, p)
			}
			grid = append(grid, line)
		}
	}
	paced, err := pacedChartRow(r, encodings, floor)
	if err != nil {
		return err
	}
	if paced != nil {
		grid = append(grid, paced)
	}
	if len(grid) == 0 {
		return nil
	}
	cols := len(grid[0])
	for _, line := range grid {
		cols = max(cols, len(line))
	}
	for i := range grid {
		for len(grid[i]) < cols {
			grid[i] = append(grid[i], plot.New())
		}
	}
	width, height := vg.Length(cols)*22*vg.Centimeter, vg.Length(len(grid))*12*vg.Centimeter
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: len(grid), Cols: cols, PadX: 4 * vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 2 * vg.Millimeter}
	canvases := plot.Align(grid, tiles, dc)
	for i := range grid {
		for j := range grid[i] {
			grid[i][j].Draw(canvases[i][j])
		}
	}

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pacedChartRow is the chart's row of the everyday load: per encoding (in
// the order of the other rows, then any others), the exporter share of CPU
// per record of kafkabatcher-defaults and contrib at the lowest paced rate,
// one bar per broker, and the floor estimate (a record at best) as a
// dashed line; nil when no paced scenario ran.
func pacedChartRow(r report, encodings []string, floor *floorCost) ([]*plot.Plot, error) {
	rate := 0
	var brokers []string
	encs := slices.Clone(encodings)
	for _, res := range r.results {
		if res.Spec.Rate == 0 {
			continue
		}
		if rate == 0 || res.Spec.Rate < rate {
			rate = res.Spec.Rate
		}
		if !slices.Contains(brokers, res.Spec.BrokerName) {
			brokers = append(brokers, res.Spec.BrokerName)
		}
		if !slices.Contains(encs, res.Spec.Encoding) {
			encs = append(encs, res.Spec.Encoding)
		}
	}
	if rate == 0 {
		return nil, nil
	}
	var systems []string
	for _, sys := range []string{sysOursDefaults, sysOursPerKey, sysContrib} {
		for _, res := range r.results {
			if res.Spec.Rate == rate && res.Spec.System == sys {
				systems = append(systems, sys)
				break
			}
		}
	}
	var row []*plot.Plot
	for _, enc := range encs {
		p := plot.New()
		p.Title.Text = fmt.Sprintf("Exporter share of CPU per record at %s rec/s, defaults, %s (total − floor)", thousands(rate), enc)
		p.Y.Label.Text = "CPU µs/record"
		p.Y.Min = 0
		p.NominalX(systems...)
		p.Legend.Top = true
		p.Legend.Left = false
		w := vg.Points(50 / float64(max(1, len(brokers))))
		var top float64
		for i, bn := range brokers {
			s := scenario{broker: bn, shape: "200B", encoding: enc, partitions: partitions, rate: rate}
			vals := make(plotter.Values, len(systems))
			if fl, ok := r.find(s, sysFloor); ok {
				for j, sys := range systems {
					if res, ok := r.find(s, sys); ok {
						vals[j] = max(0, share(res, fl))
						top = max(top, vals[j])
					}
				}
			}
			if err := addBars(p, vals, w, i, len(brokers), bn); err != nil {
				return nil, err
			}
		}
		if floor != nil {
			best := floor.totalNs() / 1000
			line := plotter.NewFunction(func(float64) float64 { return best })
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			line.Width = vg.Points(1.5)
			p.Add(line)
			p.Legend.Add(fmt.Sprintf("a record at best (%.0f ns)", floor.totalNs()), line)
			top = max(top, best)
		}
		p.Y.Max = top * 1.35
		row = append(row, p)
	}
	return row, nil
}

// addBars adds the i-th of n bar series, named name, to p: one bar per
// system, w wide, side by side with the other series.
func addBars(p *plot.Plot, vals plotter.Values, w vg.Length, i, n int, name string) error {
	bars, err := plotter.NewBarChart(vals, w)
	if err != nil {
		return err
	}
	bars.LineStyle.Width = vg.Length(0)
	bars.Color = plotutil.Color(i)
	bars.Offset = w * vg.Length(float64(i)-float64(n-1)/2)
	p.Add(bars)
	p.Legend.Add(name, bars)
	return nil
}
