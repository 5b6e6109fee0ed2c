package main

import (
	"fmt"
	"os"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// drawChart writes a PNG with two grouped bar charts, records/s and CPU
// µs/record, one group per system and one bar per scenario.
func drawChart(path string, results []runResult, o options) error {
	r := report{opts: o, results: results}
	scen := r.scenarios()
	var systems []string
	for _, s := range o.systems {
		for _, res := range results {
			if res.Spec.System == s {
				systems = append(systems, s)
				break
			}
		}
	}
	panel := func(title, ylabel string, value func(runResult) float64) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.Y.Label.Text = ylabel
		p.Y.Min = 0
		p.NominalX(systems...)
		p.Legend.Top = true
		p.Legend.Left = false
		w := vg.Points(60 / float64(max(1, len(scen))))
		var top float64
		defer func() { p.Y.Max = top * 1.3 }() // room for the legend
		for i, s := range scen {
			vals := make(plotter.Values, len(systems))
			for j, sys := range systems {
				if res, ok := r.find(s, sys); ok {
					vals[j] = value(res)
					top = max(top, vals[j])
				}
			}
			bars, err := plotter.NewBarChart(vals, w)
			if err != nil {
				return nil, err
			}
			bars.LineStyle.Width = vg.Length(0)
			bars.Color = plotutil.Color(i)
			bars.Offset = w * vg.Length(float64(i)-float64(len(scen)-1)/2)
			p.Add(bars)
			p.Legend.Add(s.shape+" "+s.encoding, bars)
		}
		return p, nil
	}
	rate, err := panel(fmt.Sprintf("Log records per second (%d callers × %d records, acks=all)", o.callers, o.perCall),
		"records/s", func(res runResult) float64 { return res.recordsPerSec() })
	if err != nil {
		return err
	}
	cpu, err := panel("CPU per record of the producing process (lower is better)",
		"CPU µs/record", func(res runResult) float64 { return res.cpuMicrosPerRecord() })
	if err != nil {
		return err
	}

	const width, height = 26 * vg.Centimeter, 22 * vg.Centimeter
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadX: vg.Millimeter, PadY: 4 * vg.Millimeter,
		PadTop: 2 * vg.Millimeter, PadBottom: 2 * vg.Millimeter, PadLeft: 2 * vg.Millimeter, PadRight: 2 * vg.Millimeter}
	canvases := plot.Align([][]*plot.Plot{{rate}, {cpu}}, tiles, dc)
	rate.Draw(canvases[0][0])
	cpu.Draw(canvases[1][0])

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
