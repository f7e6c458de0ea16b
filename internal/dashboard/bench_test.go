package dashboard

// The dashboard's budget (DESIGN.md section 7, issue 17): with 300
// environments (100 repositories × 3, ten reconciles of history each) the
// page renders on the server in ≤ 50 ms, and an SSE update reaches a client
// ≤ 100 ms after the engine records it. Run:
//
//	go test ./internal/dashboard -run '^$' -bench . -benchtime 200x
//
// BenchmarkPage reports ms/op (one GET / through the handler), cpu-ms/op
// (the process's CPU time per render, which other load on the machine does
// not inflate; the garbage collector's included) and the page's size; BenchmarkEventLatency reports p50-ms and p99-ms from a status change
// to its event parsed by a Go SSE client over loopback HTTP, with the other
// 299 environments idle.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ferry-gitops/ferry/internal/engine"
)

// cpuTime is the CPU time the process has used, user and system: the cost
// of a render, apart from what other processes on a shared machine take.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchFleet is fleet(100) with full histories.
func benchFleet() []engine.Status {
	out := fleet(100)
	for i := range out {
		for len(out[i].History) < 10 {
			out[i].History = append(out[i].History, out[i].History[0])
		}
	}
	return out
}

func BenchmarkPage(b *testing.B) {
	d := newDashboard(b, newFake(benchFleet()...), Options{})
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	var size int
	cpu := cpuTime()
	for b.Loop() {
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1000/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(size)/1024, "page-KiB")
}

func BenchmarkEventLatency(b *testing.B) {
	f := newFake(benchFleet()...)
	d := newDashboard(b, f, Options{})
	srv := httptest.NewServer(d)
	defer srv.Close()
	var state string
	{
		rec := httptest.NewRecorder()
		d.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
		_, after, _ := strings.Cut(rec.Body.String(), `data-state="`)
		state, _, _ = strings.Cut(after, `"`)
	}
	resp, err := http.Get(srv.URL + "/events?state=" + state)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	stream := events(resp.Body)
	statuses := f.Status()

	var latencies []time.Duration
	for i := 0; b.Loop(); i++ {
		s := statuses[(i*7)%len(statuses)]
		start := time.Now()
		f.update(s.Repository, s.Environment, func(s *engine.Status) { s.Summary = fmt.Sprintf("%d created", i) })
		select {
		case ev := <-stream:
			if ev.Name != "env" {
				b.Fatalf("got a %s event", ev.Name)
			}
			latencies = append(latencies, time.Since(start))
		case <-time.After(5 * time.Second):
			b.Fatal("no event within 5 s")
		}
	}
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}
