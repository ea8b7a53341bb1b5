package web

import (
	"io/fs"
	"regexp"
	"testing"
)

// The server sends a Content-Security-Policy that allows only this
// server's own script and stylesheet files: templates must carry no inline
// script, inline event handler or style attribute, and nothing may be
// loaded from another host.
func TestTemplatesFitThePolicy(t *testing.T) {
	bad := map[string]*regexp.Regexp{
		"inline script":      regexp.MustCompile(`<script(?:\s[^>]*)?>[^<]`),
		"script without src": regexp.MustCompile(`<script(?:\s(?:[^s>]|s[^r])*)?>`),
		"event handler":      regexp.MustCompile(`\son[a-z]+\s*=`),
		"style attribute":    regexp.MustCompile(`\sstyle\s*=`),
		"style element":      regexp.MustCompile(`<style`),
		"foreign URL":        regexp.MustCompile(`(?:src|href)="(?:https?:)?//`),
	}
	files, err := fs.Glob(FS, "templates/*.html")
	if err != nil || len(files) < 8 {
		t.Fatalf("templates: %v %v", files, err)
	}
	for _, f := range files {
		b, _ := fs.ReadFile(FS, f)
		for what, re := range bad {
			if m := re.Find(b); m != nil {
				t.Errorf("%s: %s: %q", f, what, m)
			}
		}
	}
}
