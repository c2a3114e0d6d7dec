//go:build linux

package tail

import (
	"errors"
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// notifier tells the Poller which watched files changed: an inotify
// instance with one watch per file, made on the open file (through
// /proc/self/fd), so a rename or a new file at the path does not move it.
// It is read without blocking, once per Poller tick: the kernel folds
// repeated events of a file into one while they wait, so a busy file costs
// no more than a quiet one.
type notifier struct {
	fd  int
	buf []byte
}

// notifyMask: written to or truncated (IN_MODIFY), unlinked (IN_ATTRIB: the
// link count changed), renamed (IN_MOVE_SELF), gone (IN_DELETE_SELF).
const notifyMask = syscall.IN_MODIFY | syscall.IN_ATTRIB | syscall.IN_MOVE_SELF | syscall.IN_DELETE_SELF

func newNotifier() (*notifier, error) {
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	return &notifier{fd: fd, buf: make([]byte, 16<<10)}, nil
}

// watch starts watching the open file f and returns the watch's id.
func (n *notifier) watch(f *os.File) (int32, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	var wd int
	var werr error
	if err := rc.Control(func(fd uintptr) {
		wd, werr = syscall.InotifyAddWatch(n.fd, "/proc/self/fd/"+strconv.Itoa(int(fd)), notifyMask)
	}); err != nil {
		return -1, err
	}
	if werr != nil {
		return -1, os.NewSyscallError("inotify_add_watch", werr)
	}
	return int32(wd), nil
}

// unwatch ends a watch; the kernel confirms with an IN_IGNORED event.
func (n *notifier) unwatch(wd int32) {
	syscall.InotifyRmWatch(n.fd, uint32(wd))
}

// maxReads bounds the reads of one call of read: writers that never pause
// cannot keep the Poller reading events (up to 16 x 16 KiB a tick; the
// rest waits for the next one).
const maxReads = 16

// read hands the events waiting to fn, by watch id, and reports whether
// the kernel dropped events (its queue overflowed): then any watched file
// may have changed.
func (n *notifier) read(fn func(wd int32, kind int)) (overflow bool, err error) {
	for range maxReads {
		k, err := syscall.Read(n.fd, n.buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.EAGAIN) {
			return overflow, nil
		}
		if err != nil {
			return overflow, os.NewSyscallError("read inotify", err)
		}
		for off := 0; off+syscall.SizeofInotifyEvent <= k; {
			ev := (*syscall.InotifyEvent)(unsafe.Pointer(&n.buf[off]))
			off += syscall.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&syscall.IN_Q_OVERFLOW != 0 {
				overflow = true
				continue
			}
			kind := 0
			if ev.Mask&syscall.IN_MODIFY != 0 {
				kind |= notifyWritten
			}
			if ev.Mask&(syscall.IN_ATTRIB|syscall.IN_MOVE_SELF|syscall.IN_DELETE_SELF) != 0 {
				kind |= notifyMoved
			}
			if ev.Mask&syscall.IN_IGNORED != 0 {
				kind |= notifyGone
			}
			fn(ev.Wd, kind)
		}
	}
	return overflow, nil
}

func (n *notifier) close() { syscall.Close(n.fd) }
