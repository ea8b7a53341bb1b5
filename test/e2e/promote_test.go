package e2e

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// TestPromoteHoldsOnReturn: when `snapshot promote` or `rollback` exits 0,
// every serve on the same data_dir answers from the new pointer on its very
// next request (no refresh window).
func TestPromoteHoldsOnReturn(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("s3cret\n"), 0o600)
	gen := [][]byte{[]byte("generation one\n"), []byte("generation two\n")}
	var ids []string
	for _, b := range gen {
		up.set("f.txt", b)
		e.writeConfig(fileConfig(up.URL, fileSpec{"f.txt", b}))
		ids = append(ids, e.sync())
	}
	bases := []string{e.serve(freePort(t)), e.serve(freePort(t))}
	check := func(round int, want []byte, what string) {
		t.Helper()
		for _, base := range bases {
			resp, body := get(t, base+"/channels/production/file/images/f.txt", nil)
			if resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Fatalf("round %d, right after %s: %s served %d %q, want %q", round, what, base, resp.StatusCode, body, want)
			}
		}
	}
	for i := range 50 {
		n := i % 2
		e.must("snapshot", "promote", ids[n], "production")
		check(i, gen[n], "promote "+ids[n])
	}
	// History now ends ..., ids[0], ids[1]: each rollback steps back one.
	for i := range 4 {
		e.must("snapshot", "rollback", "production")
		check(i, gen[i%2], "rollback")
	}
}

// TestJSONShapesMatch: the CLI's --json and the API answer the same JSON
// for the same object.
func TestJSONShapesMatch(t *testing.T) {
	up := newUpstream(t)
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("s3cret\n"), 0o600)
	b := []byte("one\n")
	up.set("f.txt", b)
	e.writeConfig(fileConfig(up.URL, fileSpec{"f.txt", b}))
	id := e.sync()
	cliChan := e.must("snapshot", "promote", "--json", id, "production")
	base := e.serve(freePort(t))
	decode := func(what string, data []byte) any {
		t.Helper()
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, data)
		}
		return v
	}
	for _, tc := range []struct{ cli, api string }{
		{e.must("snapshot", "list", "--json"), "/api/v1/snapshots"},
		{e.must("snapshot", "show", "--json", id), "/api/v1/snapshots/" + id},
		{cliChan, "/api/v1/channels/production"},
	} {
		_, body := get(t, base+tc.api, nil)
		if c, a := decode("CLI", []byte(tc.cli)), decode(tc.api, body); !reflect.DeepEqual(c, a) {
			t.Errorf("CLI --json and GET %s differ:\nCLI: %s\nAPI: %s", tc.api, tc.cli, body)
		}
	}
	var list []map[string]any
	json.Unmarshal([]byte(e.must("snapshot", "list", "--json")), &list)
	src := list[0]["sources"].([]any)[0].(map[string]any)
	if _, ok := src["items"].(float64); !ok {
		t.Errorf("items is not a count: %v", src)
	}
}
