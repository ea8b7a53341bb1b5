package source

import (
	"context"
	"reflect"
	"testing"
)

// fakeKind is a source with a client snippet and, optionally, a file.
type fakeKind struct {
	kind, name string
	file       *ClientFile
}

func (f fakeKind) Kind() string { return f.kind }
func (f fakeKind) Name() string { return f.name }
func (f fakeKind) Sync(context.Context, *Env) (*Result, error) {
	return &Result{}, nil
}
func (f fakeKind) ClientConfig(base, keyURL string) string {
	return f.kind + " " + base + " " + keyURL + "\n"
}

type filedKind struct{ fakeKind }

func (f filedKind) ClientFile() ClientFile { return *f.file }

// TestPlanClientFiles: snippets grouped by the file each kind names (git's
// one shared file once), mirrord's key and git includes once each, file
// sources without a client file set apart.
func TestPlanClientFiles(t *testing.T) {
	apt := func(n string) Source {
		return filedKind{fakeKind{"apt", n, &ClientFile{Path: "/etc/apt/sources.list.d/mirrord-" + n + ".sources", Key: "/etc/apt/keyrings/mirrord.asc"}}}
	}
	git := func(n string) Source {
		return filedKind{fakeKind{"git", n, &ClientFile{Path: "/etc/mirrord/gitconfig", IncludedBy: "/etc/gitconfig"}}}
	}
	srcs := []Source{apt("a"), git("x"), apt("b"), git("y"), fakeKind{"file", "img", nil}}
	p := PlanClientFiles(srcs, Under("http://m/snapshots/S"), "http://m/k")
	want := ClientPlan{
		Files: []PlannedFile{
			{"/etc/apt/sources.list.d/mirrord-a.sources", "apt http://m/snapshots/S/apt/a http://m/k\n"},
			{"/etc/mirrord/gitconfig", "git http://m/snapshots/S/git/x http://m/k\ngit http://m/snapshots/S/git/y http://m/k\n"},
			{"/etc/apt/sources.list.d/mirrord-b.sources", "apt http://m/snapshots/S/apt/b http://m/k\n"},
		},
		Keys:     []string{"/etc/apt/keyrings/mirrord.asc"},
		Includes: [][2]string{{"/etc/gitconfig", "/etc/mirrord/gitconfig"}},
		Unfiled:  []Snippet{{"file/img", "file http://m/snapshots/S/file/img http://m/k\n"}},
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("plan\n got %+v\nwant %+v", p, want)
	}
	if got := ClientConfigText(srcs[:1], Under("R"), "K"); got != "apt R/apt/a K\n" {
		t.Errorf("ClientConfigText = %q", got)
	}
}
