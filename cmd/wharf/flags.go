package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"

	"github.com/wharf-logs/wharf/internal/config"
)

// options are the flags shared by run and check; set flags override the
// configuration file. No flag takes a secret: the command line is visible to
// every user of the host (ps, /proc/<pid>/cmdline), so credentials come from
// the configuration file, its ${VAR} references or the *_file keys.
type options struct {
	configFile string
	lokiURL    string
	dataDir    string
	listen     string
	logLevel   string
}

func parseFlags(name string, args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("wharf "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.configFile, "config", "", "YAML configuration `file` (defaults apply without one)")
	fs.StringVar(&o.lokiURL, "loki-url", "", "Loki push `URL`; overrides loki.url (credentials go in the config file, not here)")
	fs.StringVar(&o.dataDir, "data-dir", "", "data `directory`; overrides data_dir")
	fs.StringVar(&o.listen, "listen", "", "admin HTTP `address`; overrides listen")
	fs.StringVar(&o.logLevel, "log-level", "", "debug, info, warn or error; overrides log.level")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, nil
}

// urlHasPassword reports whether raw carries a password in its user
// information.
func urlHasPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return false
	}
	_, has := u.User.Password()
	return has
}

// load reads the configuration and applies flag overrides, then validates.
func (o options) load() (config.Config, error) {
	cfg, err := config.Read(o.configFile)
	if err != nil {
		return cfg, err
	}
	if o.lokiURL != "" {
		cfg.Loki.URL = o.lokiURL
	}
	if o.dataDir != "" {
		cfg.DataDir = o.dataDir
	}
	if o.listen != "" {
		cfg.Listen = o.listen
	}
	if o.logLevel != "" {
		cfg.Log.Level = config.LogLevel(o.logLevel)
	}
	return cfg, cfg.Validate()
}
