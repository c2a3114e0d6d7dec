//go:build !linux

package tail

import (
	"errors"
	"os"
)

// notifier is Linux's inotify; elsewhere the Poller only polls.
type notifier struct{}

func newNotifier() (*notifier, error) { return nil, errors.New("tail: no inotify on this system") }

func (*notifier) watch(*os.File) (int32, error)               { return -1, errors.ErrUnsupported }
func (*notifier) unwatch(int32)                               {}
func (*notifier) read(func(wd int32, kind int)) (bool, error) { return false, nil }
func (*notifier) close()                                      {}
