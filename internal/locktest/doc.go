// Package locktest serialises work that test packages running in parallel
// share through the file system, such as building the log generator's image
// or installing VictoriaLogs into the repository's cache: the first package
// does it while the others wait on a lock file, then find it done.
// ModuleRoot finds the repository whose cache that is.
package locktest
