package loki_test

import (
	"reflect"
	"testing"

	"github.com/wharf-logs/wharf/internal/entry"
	"github.com/wharf-logs/wharf/internal/jsonenc"
	"github.com/wharf-logs/wharf/internal/loki"
)

// Seeds beyond those added here live in testdata/fuzz/<FuzzName>.

// FuzzRoundTrip encodes fuzzed entries in every format and checks that they
// decode to what was sent.
func FuzzRoundTrip(f *testing.F) {
	f.Add("web", "GET / 200", int64(1_700_000_000_123_456_789), "c1", "second line", int64(-1))
	f.Add("\xff\"", "\x00\u2028\xe2\x82", int64(0), "", "", int64(1<<62))
	f.Fuzz(func(t *testing.T, labelValue, line1 string, t1 int64, mdValue, line2 string, t2 int64) {
		s := entry.NewStream(labels("app", labelValue), labels("container_id", mdValue), "")
		bare := entry.NewStream(labels("app", labelValue, "stream", "stderr"), nil, "")
		b := batchOf(line{s, t1, line1}, line{bare, t2, line2}, line{s, t2, line2 + line1})
		for _, tc := range []struct {
			format loki.Format
			gzip   bool
		}{{loki.FormatProtobuf, false}, {loki.FormatJSON, false}, {loki.FormatJSON, true}} {
			got := roundTrip(t, tc.format, tc.gzip, b)
			if want := expected(b, tc.format == loki.FormatJSON); !reflect.DeepEqual(got, want) {
				t.Fatalf("%s gzip=%v:\n got %+v\nwant %+v", tc.format, tc.gzip, got, want)
			}
		}
	})
}

func FuzzAppendJSONString(f *testing.F) {
	f.Add("plain")
	f.Add("\x00\"\\\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(jsonenc.AppendString(nil, s)), stdJSON(t, s); got != want {
			t.Fatalf("jsonenc.AppendString(%q) = %s, encoding/json gives %s", s, got, want)
		}
	})
}
