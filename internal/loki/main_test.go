package loki

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: a response
// body not closed keeps the transport's connection goroutines alive.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
