package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Limits on the files a configuration names. A secret file holds one line;
// a PEM file a few certificates. Anything larger is a mistake (a log file, a
// device), and reading it whole would cost memory for nothing.
const (
	maxSecretFile = 64 << 10
	maxPEMFile    = 4 << 20
	// MinAdminToken is the shortest admin.token accepted.
	MinAdminToken = 16
)

// fileError is a problem with a file a key names, phrased to follow
// "<key>: ".
type fileError struct{ msg string }

func (e *fileError) Error() string { return e.msg }

// readRegular reads the regular file name, refusing directories, devices
// and FIFOs (opening a FIFO would block startup) and files over limit.
// what says what the file should hold, for the fix in the message; shown is
// how messages name the file (see problems.quoted).
func readRegular(name, shown string, limit int64, what string) ([]byte, error) {
	fi, err := os.Stat(name)
	if err != nil {
		return nil, &fileError{fmt.Sprintf("cannot read %s: %v; point it at a file wharf can read that holds %s", shown, unwrapPath(err), what)}
	}
	if !fi.Mode().IsRegular() {
		kind := "not a regular file"
		if fi.IsDir() {
			kind = "a directory"
		}
		return nil, &fileError{fmt.Sprintf("%s is %s; point it at a file that holds %s", shown, kind, what)}
	}
	if fi.Size() > limit {
		return nil, &fileError{fmt.Sprintf("%s is %d bytes, more than the %d a file holding %s may have; check the path", shown, fi.Size(), limit, what)}
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, &fileError{fmt.Sprintf("cannot read %s: %v; point it at a file wharf can read that holds %s", shown, unwrapPath(err), what)}
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, &fileError{fmt.Sprintf("cannot read %s: %v", shown, unwrapPath(err))}
	}
	if int64(len(b)) > limit {
		return nil, &fileError{fmt.Sprintf("%s is more than %d bytes; it should hold %s alone", shown, limit, what)}
	}
	return b, nil
}

// readSecretFile returns the secret held by the file name: one line, its
// surrounding white space removed. what names the secret ("the password")
// in errors, which never quote the file's content. It is wharf's one reader
// of secret files: admin.token_file and the loki credentials.
func readSecretFile(name, shown, what string) (string, error) {
	b, err := readRegular(name, shown, maxSecretFile, what)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	switch {
	case s == "":
		return "", &fileError{fmt.Sprintf("%s is empty; write %s into it, on one line", shown, what)}
	case strings.ContainsAny(s, "\r\n"):
		return "", &fileError{fmt.Sprintf("%s holds more than one line; it must hold %s alone", shown, what)}
	}
	return s, nil
}

// token returns the admin token: admin.token, or the content of
// admin.token_file; "" when neither is set. Errors name the key.
func (a *Admin) token(from expansions) (string, error) {
	if a.Token != "" && a.TokenFile != "" {
		return "", &Error{Path: "admin.token", Msg: "set token or token_file, not both"}
	}
	tok, path := string(a.Token), "admin.token"
	if a.TokenFile != "" {
		var err error
		path = "admin.token_file"
		tok, err = readSecretFile(a.TokenFile, from.quoted(path, a.TokenFile), "the admin token")
		if err != nil {
			return "", &Error{Path: path, Msg: err.Error()}
		}
	}
	if tok == "" {
		return "", nil
	}
	if err := checkAdminToken(tok); err != nil {
		return "", &Error{Path: path, Msg: err.Error()}
	}
	return tok, nil
}

// checkAdminToken refuses tokens that are easy to guess or cannot travel in
// an Authorization header. Messages never quote the token.
func checkAdminToken(tok string) error {
	if tok == Redacted {
		return errors.New("holds the placeholder that `wharf check` prints; put the real token here")
	}
	if len(tok) < MinAdminToken {
		return fmt.Errorf("the token has %d characters; use at least %d, e.g. the output of `openssl rand -hex 32`", len(tok), MinAdminToken)
	}
	for i := 0; i < len(tok); i++ {
		if c := tok[i]; c <= ' ' || c >= 0x7f {
			return errors.New("the token holds a space or a character that is not printable ASCII; use letters, digits and punctuation only")
		}
	}
	return nil
}

// build returns the TLS settings of connections to Loki: the server is
// verified against the system's CAs (or ca_file's), the client certificate
// is sent when set, and TLS 1.2 is the least. Validation and the Loki
// client both get their settings here, so a file the client could not use
// fails `wharf check`. Errors name the key.
func (t *TLS) build(from expansions) (*tls.Config, error) {
	p := problems{from: from}
	c := &tls.Config{
		ServerName:         t.ServerName,
		InsecureSkipVerify: t.InsecureSkipVerify, //nolint:gosec // the user asked, and the agent warns
		MinVersion:         tls.VersionTLS12,
	}
	if t.CAFile != "" {
		b, err := readRegular(t.CAFile, p.quoted("loki.tls.ca_file", t.CAFile), maxPEMFile, "PEM certificates")
		c.RootCAs = x509.NewCertPool()
		switch {
		case err != nil:
			p.add("loki.tls.ca_file", "%v", err)
		case !c.RootCAs.AppendCertsFromPEM(b):
			p.add("loki.tls.ca_file", "%s holds no PEM certificate; set it to the CA certificate (-----BEGIN CERTIFICATE-----) that signed Loki's", p.quoted("loki.tls.ca_file", t.CAFile))
		}
	}
	switch {
	case (t.CertFile == "") != (t.KeyFile == ""):
		p.add("loki.tls", "cert_file and key_file go together; set both or neither")
	case t.CertFile != "":
		cert, err := readRegular(t.CertFile, p.quoted("loki.tls.cert_file", t.CertFile), maxPEMFile, "a PEM certificate")
		if err != nil {
			p.add("loki.tls.cert_file", "%v", err)
		}
		key, kerr := readRegular(t.KeyFile, p.quoted("loki.tls.key_file", t.KeyFile), maxPEMFile, "a PEM private key")
		if kerr != nil {
			p.add("loki.tls.key_file", "%v", kerr)
		}
		if err != nil || kerr != nil {
			break
		}
		pair, err := tls.X509KeyPair(cert, key)
		if err != nil {
			p.add("loki.tls.cert_file", "%s and loki.tls.key_file %s do not load as a certificate and its key (%v); set them to the PEM client certificate and its private key", p.quoted("loki.tls.cert_file", t.CertFile), p.quoted("loki.tls.key_file", t.KeyFile), err)
			break
		}
		c.Certificates = []tls.Certificate{pair}
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return c, nil
}
