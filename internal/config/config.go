// Package config defines wharf's configuration: the YAML schema, its
// defaults, strict loading with ${VAR} expansion, and validation whose errors
// name the YAML path of the bad value and how to fix it.
package config

import (
	"log/slog"
	"time"

	"github.com/wharf-logs/wharf/internal/docker"
	"github.com/wharf-logs/wharf/internal/loki"
	"github.com/wharf-logs/wharf/internal/source"
)

// Config is the whole configuration of one wharf process.
type Config struct {
	// DataDir holds positions, queues, dead letters and the file sink's logs.
	DataDir string `yaml:"data_dir"`
	// Listen is the admin HTTP address (metrics, health, pprof).
	Listen string `yaml:"listen"`
	// ShutdownTimeout bounds how long a stop waits for buffered entries to be
	// delivered.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	Log    Log    `yaml:"log"`
	Admin  Admin  `yaml:"admin"`
	Labels Labels `yaml:"labels"`
	Docker Docker `yaml:"docker"`
	Buffer Buffer `yaml:"buffer"`
	Queue  Queue  `yaml:"queue"`
	File   File   `yaml:"file"`
	Loki   Loki   `yaml:"loki"`

	// Files are plain log files to ship beside (or instead of) containers.
	Files []FileSource `yaml:"files"`
	// MaxFollowedFiles caps the plain files read at once, over all files:
	// entries; each holds a descriptor and a goroutine. Files matched
	// beyond it wait for a place (wharf_files_over_limit).
	MaxFollowedFiles int `yaml:"max_followed_files"`

	// expanded are the values Parse took from ${VAR} references, which
	// errors do not quote.
	expanded expansions
}

// FileSource is a set of plain log files read the same way.
type FileSource struct {
	// Paths are glob patterns of the files to read, in filepath.Match
	// syntax, e.g. /var/log/app/*.log.
	Paths []string `yaml:"paths"`
	// Exclude are glob patterns of files not to read, matched against the
	// full path (e.g. "*.gz", "/var/log/app/*.1").
	Exclude []string `yaml:"exclude"`
	// Labels are added to the streams of these files, beside filename and
	// host.
	Labels map[string]string `yaml:"labels"`
	// StartAt is where a file found at startup without a saved position is
	// read from: end or beginning. Files that appear later are read from
	// their beginning.
	StartAt source.StartAt `yaml:"start_at"`
	// MaxLineBytes caps a line (or a multi-line entry).
	MaxLineBytes ByteSize `yaml:"max_line_bytes"`
	// Multiline joins continuation lines to the line that starts an entry.
	Multiline Multiline `yaml:"multiline"`
	// FollowSymlinks reads files through symbolic links. Off: a link the
	// patterns match is not read (counted and logged), nor is a linked
	// directory after a pattern's first wildcard gone through.
	FollowSymlinks bool `yaml:"follow_symlinks"`
}

// Multiline joins the lines of one entry (a stack trace, say).
type Multiline struct {
	// Start is a regular expression matching the first line of an entry;
	// joining is off when empty.
	Start string `yaml:"start"`
	// MaxWait sends an entry when no line came for this long.
	MaxWait time.Duration `yaml:"max_wait"`
	// MaxLines and MaxBytes send an entry when it reaches them.
	MaxLines int      `yaml:"max_lines"`
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// Log configures wharf's own logging.
type Log struct {
	Level  LogLevel  `yaml:"level"`
	Format LogFormat `yaml:"format"`
}

// LogLevel is the least severe of wharf's own log records that is written.
// The configuration owns it: no package but cmd/wharf, which sets up the
// logger, needs it.
type LogLevel string

// Log levels, as written in log.level.
const (
	LogDebug LogLevel = "debug"
	LogInfo  LogLevel = "info"
	LogWarn  LogLevel = "warn"
	LogError LogLevel = "error"
)

// Slog returns the slog level of l; info for an unknown level.
func (l LogLevel) Slog() slog.Level {
	switch l {
	case LogDebug:
		return slog.LevelDebug
	case LogWarn:
		return slog.LevelWarn
	case LogError:
		return slog.LevelError
	}
	return slog.LevelInfo
}

// LogFormat is how wharf writes its own log records, as written in
// log.format.
type LogFormat string

// Log formats.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Admin configures the admin HTTP server.
type Admin struct {
	// Pprof serves /debug/pprof/ when true.
	Pprof bool `yaml:"pprof"`
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// every admin endpoint but /healthz. Write it as ${VAR} rather than in
	// the file, or use TokenFile.
	Token Secret `yaml:"token"`
	// TokenFile names a file holding the token, read at startup.
	TokenFile string `yaml:"token_file"`
}

// Labels configures the labels added to every stream.
type Labels struct {
	// Host is the value of the host label; the machine's hostname when empty.
	Host string `yaml:"host"`
	// Static labels are added to every stream.
	Static map[string]string `yaml:"static"`
}

// Docker configures container discovery and reading.
type Docker struct {
	// Enabled turns container collection on (the default).
	Enabled bool `yaml:"enabled"`
	// Host is the Engine address (unix:///var/run/docker.sock, tcp://h:2376);
	// DOCKER_HOST or the default socket when empty.
	Host string `yaml:"host"`
	// ReadFrom chooses how logs are read: api, file or auto.
	ReadFrom docker.ReadMode `yaml:"read_from"`
	// StartAt is where a container already running at startup, without a
	// saved position and not created after wharf's history mark (see
	// internal/docker), is read from: end or beginning.
	StartAt source.StartAt `yaml:"start_at"`
	// MaxLineBytes caps a line; longer lines are truncated with a marker.
	MaxLineBytes ByteSize `yaml:"max_line_bytes"`
	// Include keeps only containers matching at least one rule (all when empty).
	Include []ContainerRule `yaml:"include"`
	// Exclude drops containers matching any rule; it wins over Include.
	Exclude []ContainerRule `yaml:"exclude"`
	// LabelsFromContainer maps a stream label name to a container label key.
	LabelsFromContainer map[string]string `yaml:"labels_from_container"`
	// StartupConcurrency bounds how many containers are inspected at once
	// while listing at startup or after a reconnect.
	StartupConcurrency int `yaml:"startup_concurrency"`
}

// ContainerRule matches a container when every field that is set matches.
type ContainerRule struct {
	// Name is a regular expression matched against the container name.
	Name string `yaml:"name"`
	// Image is a regular expression matched against the image reference.
	Image string `yaml:"image"`
	// Label is "key" (the label is present) or "key=value".
	Label string `yaml:"label"`
}

// Buffer bounds the memory between sources and sinks.
type Buffer struct {
	// MaxBytes is the in-memory budget per sink; sources pause when it is
	// full.
	MaxBytes ByteSize `yaml:"max_bytes"`
}

// Queue configures the on-disk queue each sink overflows into while it
// falls behind (an outage, a slow receiver), so reading never stops for it
// and logs Docker rotates away meanwhile are kept.
type Queue struct {
	// Enabled turns the queue on (the default). Without it a failing sink
	// pauses reading once its memory buffer is full.
	Enabled bool `yaml:"enabled"`
	// MaxBytes bounds each sink's queue on disk; reading pauses when full.
	MaxBytes ByteSize `yaml:"max_bytes"`
	// SyncInterval is how often queued entries are fsynced; they are
	// confirmed to their source only after that.
	SyncInterval time.Duration `yaml:"sync_interval"`
}

// File configures the local NDJSON file sink.
type File struct {
	// Enabled writes logs to files. When no Loki URL is set the file sink is
	// enabled whatever this says, so logs always go somewhere.
	Enabled *bool `yaml:"enabled"`
	// Dir is where files go; <data_dir>/logs when empty.
	Dir string `yaml:"dir"`
	// MaxFileBytes rotates a file when it would grow beyond this size.
	MaxFileBytes ByteSize `yaml:"max_file_bytes"`
	// MaxFiles is how many rotated files are kept per stream origin.
	MaxFiles int `yaml:"max_files"`
	// MaxTotalBytes caps the size of all the sink's files; beyond it the
	// least recently modified are removed. 0 sets no cap.
	MaxTotalBytes ByteSize `yaml:"max_total_bytes"`
	// Fsync syncs each written batch to disk before confirming it.
	Fsync bool `yaml:"fsync"`
}

// Loki configures delivery to a Loki-protocol receiver.
type Loki struct {
	// URL is the push endpoint, e.g. http://loki:3100/loki/api/v1/push.
	// Loki delivery is off when empty.
	URL string `yaml:"url"`
	// Format is protobuf (snappy) or json.
	Format loki.Format `yaml:"format"`
	// Gzip compresses JSON bodies.
	Gzip bool `yaml:"gzip"`
	// TenantID is sent as X-Scope-OrgID.
	TenantID string `yaml:"tenant_id"`

	BasicAuth  BasicAuth         `yaml:"basic_auth"`
	Bearer     Secret            `yaml:"bearer_token"`
	BearerFile string            `yaml:"bearer_token_file"`
	Headers    map[string]string `yaml:"headers"`
	TLS        TLS               `yaml:"tls"`

	// Timeout bounds one push request.
	Timeout time.Duration `yaml:"timeout"`
	// BatchSize and BatchWait close a batch by bytes or age.
	BatchSize ByteSize      `yaml:"batch_size"`
	BatchWait time.Duration `yaml:"batch_wait"`
	// Parallelism is how many requests may be in flight, each for a
	// disjoint set of streams.
	Parallelism int `yaml:"parallelism"`
	// MinBackoff and MaxBackoff bound the wait between retries.
	MinBackoff time.Duration `yaml:"min_backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`

	// MaxAge and MaxFuture dead-letter entries Loki would reject for their
	// timestamp instead of sending them.
	MaxAge    time.Duration `yaml:"max_age"`
	MaxFuture time.Duration `yaml:"max_future"`
	// MaxLineBytes and LongLines handle lines longer than Loki accepts:
	// truncate or drop (dead-letter).
	MaxLineBytes ByteSize       `yaml:"max_line_bytes"`
	LongLines    loki.LongLines `yaml:"long_lines"`

	// StructuredMetadata sends each stream's metadata (container_id, image)
	// as Loki structured metadata. Turn it off for a Loki that does not
	// allow it (allow_structured_metadata: false, the 2.x default).
	StructuredMetadata bool `yaml:"structured_metadata"`

	// DeadLetter bounds the dead-letter files.
	DeadLetter DeadLetter `yaml:"dead_letter"`
}

// BasicAuth is HTTP basic authentication.
type BasicAuth struct {
	Username     string `yaml:"username"`
	Password     Secret `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
}

// TLS configures the client side of TLS connections.
type TLS struct {
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	ServerName         string `yaml:"server_name"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// DeadLetter bounds the NDJSON files of entries a receiver refused for good.
type DeadLetter struct {
	MaxFileBytes ByteSize `yaml:"max_file_bytes"`
	MaxFiles     int      `yaml:"max_files"`
}

// Secret is a string that is never printed: its String and YAML forms are
// redacted.
type Secret string

// Redacted is what a set secret prints as.
const Redacted = "<redacted>"

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// MarshalYAML redacts the secret.
func (s Secret) MarshalYAML() (any, error) { return s.String(), nil }
