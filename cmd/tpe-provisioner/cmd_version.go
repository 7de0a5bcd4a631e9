package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// version and revision are stamped by the release build (the Dockerfile's VERSION and
// REVISION build arguments: -ldflags "-X main.version=... -X main.revision=..."). Empty
// means "take them from the Go build info".
var (
	version  string
	revision string
)

func init() {
	commands["version"] = command{summary: "print the version and VCS revision of this binary (also --version)", run: runVersion}
}

// build is what a binary knows about how it was built.
type build struct {
	Version   string `json:"version"`
	Revision  string `json:"revision"`
	Modified  bool   `json:"modified,omitempty"` // built from a work tree with uncommitted changes
	Time      string `json:"time,omitempty"`     // the revision's commit time
	GoVersion string `json:"goVersion"`
}

// currentBuild reads the stamped version, then the module version and VCS settings Go
// records in the binary (absent with -buildvcs=false). "unknown" fills what neither says.
func currentBuild() build {
	b := build{Version: version, Revision: revision}
	if bi, ok := debug.ReadBuildInfo(); ok {
		b.GoVersion = bi.GoVersion
		if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			b.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if b.Revision == "" {
					b.Revision = s.Value
				}
			case "vcs.modified":
				b.Modified, _ = strconv.ParseBool(s.Value)
			case "vcs.time":
				b.Time = s.Value
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.Revision == "" {
		b.Revision = "unknown"
	}
	return b
}

// LogValue puts the build into a log line as build.version and build.revision.
func (b build) LogValue() slog.Value {
	return slog.GroupValue(slog.String("version", b.Version), slog.String("revision", b.Revision))
}

func (b build) String() string {
	s := fmt.Sprintf("tpe-provisioner %s (revision %s", b.Version, b.Revision)
	if b.Modified {
		s += ", modified"
	}
	return s + ", " + b.GoVersion + ")"
}

// newBuildInfo is the tpe_build_info gauge: always 1, labelled with the version and the
// revision, so dashboards can tell which build each replica runs.
func newBuildInfo() prometheus.Collector {
	b := currentBuild()
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "tpe_build_info",
		Help:        "Always 1; the labels say which build of tpe-provisioner is running.",
		ConstLabels: prometheus.Labels{"version": b.Version, "revision": b.Revision},
	}, func() float64 { return 1 })
}

func runVersion(_ context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	out := outputFormatFlag(fs, "table")
	if err := parseNoArgs(fs, args, stdout); err != nil {
		return err
	}
	b := currentBuild()
	if *out == "json" {
		return printJSON(stdout, b)
	}
	_, err := fmt.Fprintln(stdout, b)
	return err
}
