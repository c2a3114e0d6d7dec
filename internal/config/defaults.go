package config

import (
	"time"

	"github.com/wharf-logs/wharf/internal/docker"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/source"
)

// Default returns the configuration wharf runs with when no file is given.
// Loading a file starts from these values, so a file only states what it
// changes.
func Default() Config {
	return Config{
		DataDir:          "./wharf-data",
		Listen:           "127.0.0.1:9080",
		ShutdownTimeout:  10 * time.Second,
		MaxFollowedFiles: 4096,
		Log:              Log{Level: LogInfo, Format: LogText},
		Docker: Docker{
			Enabled:            true,
			ReadFrom:           docker.ReadAuto,
			StartAt:            source.StartEnd,
			MaxLineBytes:       256 * KiB,
			StartupConcurrency: 8,
		},
		Buffer: Buffer{MaxBytes: 8 * MiB},
		Queue:  Queue{Enabled: true, MaxBytes: 1 * GiB, SyncInterval: 100 * time.Millisecond},
		File: File{
			MaxFileBytes: 100 * MiB,
			MaxFiles:     5,
			// Twenty origins' full rotations at the defaults: generous, yet
			// a host whose container names keep changing cannot fill its
			// disk with the files of containers long gone.
			MaxTotalBytes: 10 * GiB,
		},
		Loki: Loki{
			Format:             loki.FormatProtobuf,
			Timeout:            10 * time.Second,
			BatchSize:          1 * MiB,
			BatchWait:          1 * time.Second,
			Parallelism:        2,
			MinBackoff:         500 * time.Millisecond,
			MaxBackoff:         5 * time.Minute,
			MaxAge:             167 * time.Hour,
			MaxFuture:          10 * time.Minute,
			MaxLineBytes:       256 * KiB,
			LongLines:          loki.LongLinesTruncate,
			StructuredMetadata: true,
			DeadLetter:         DeadLetter{MaxFileBytes: 100 * MiB, MaxFiles: 3},
		},
	}
}

// FileEnabled reports whether the file sink runs: when asked for, or when
// there is no Loki URL, so logs always go somewhere.
func (c *Config) FileEnabled() bool {
	if c.Loki.URL == "" {
		return true
	}
	return c.File.Enabled != nil && *c.File.Enabled
}

// FileDir is the file sink's directory.
func (c *Config) FileDir() string {
	if c.File.Dir != "" {
		return c.File.Dir
	}
	return c.DataDir + "/logs"
}
