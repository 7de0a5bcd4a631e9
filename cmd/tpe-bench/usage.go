package main

import (
	"fmt"
	"os"
	"runtime/pprof"
	"syscall"
	"time"
)

// usage is the process's CPU time and peak resident set, from getrusage(2).
type usage struct {
	cpu       time.Duration // user + system
	peakRSSKB int64         // ru_maxrss: kilobytes on Linux
}

func readUsage(who int) usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		return usage{}
	}
	return rusage(&ru)
}

func rusage(ru *syscall.Rusage) usage {
	return usage{cpu: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), peakRSSKB: ru.Maxrss}
}

func selfUsage() usage { return readUsage(syscall.RUSAGE_SELF) }

// mb converts ru_maxrss kilobytes to megabytes, rounded to one decimal.
func mb(kb int64) float64 { return round1(float64(kb) / 1024) }

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// startProfile writes a CPU profile to path until the returned function is called; an
// empty path profiles nothing.
func startProfile(path string) (func(), error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }, nil
}
