package loki

import "testing"

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://loki:3100/loki/api/v1/push":         "http://loki:3100/loki/api/v1/push",
		"http://u@loki/push":                        "http://u@loki/push",
		"http://u:pw@loki/push":                     "http://u:xxxxx@loki/push",
		"https://loki/push?api_key=k&tenant=t&flag": "https://loki/push?api_key=xxxxx&tenant=xxxxx&flag",
		"https://u:pw@loki/push?api_key=k%20x":      "https://u:xxxxx@loki/push?api_key=xxxxx",
		"https://loki/push?":                        "https://loki/push?",
		"tcp://docker:2376":                         "tcp://docker:2376",
		"http://u:pw@lo ki/%zz?key=k":               "http://xxxxx@lo ki/%zz?xxxxx",
		"http://u:p@w@host:1/x":                     "http://u:xxxxx@host:1/x",
		"not a url":                                 "not a url",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
