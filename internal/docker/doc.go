// Package docker reads container logs from the Docker Engine: it discovers
// containers through the Engine API, follows their events, and reads each
// container's log from its json-file on disk when it can, through
// /containers/{id}/logs otherwise, keeping a position per container that
// advances only when the lines read are confirmed. Both encodings of the log
// are parsed by internal/dockerlog.
package docker
