package gitcache

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/reposyaml"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// reposFilePath is where a git source's tree keeps the repos.yaml its
// snapshot was made from (Options.ReposYAML), served as is at
// .../git/NAME/repos.yaml and rewritten to the mirror at .../git/repos.yaml.
const reposFilePath = "repos.yaml"

// maxReposFile bounds the repos.yaml read back from the store.
const maxReposFile = 16 << 20

// ReposFile returns the repos.yaml of snapshot rec as clients of base
// (public_url + "/snapshots/ID" or "/channels/C") should read it: the file
// the snapshot was made from, every entry's source set to its clone URL on
// the mirror (base + "/git/NAME.git"); groups, variables, refs, dests and
// comments as they were. An entry the snapshot has no repository for
// keeps its upstream source and is listed in missing. The first line
// names the snapshot. `mirrord repos-yaml` and the server's
// .../git/repos.yaml both answer with exactly these bytes.
func ReposFile(ctx context.Context, cat *snapshot.Catalog, rec *snapshot.Record, base string) (out []byte, missing []string, err error) {
	data, src, err := storedReposFile(ctx, cat, rec)
	if err != nil {
		return nil, nil, err
	}
	repos, err := config.ParseRepos(reposFilePath, data)
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: the repos.yaml of %s: %w", rec.ID, src, err)
	}
	upstream := map[string]string{}
	for _, r := range repos {
		upstream[r.Name] = r.URL
	}
	out, err = reposyaml.Rewrite(data, func(name string) (string, bool) {
		if _, ok := rec.Source(Kind + "/" + name); ok {
			return base + "/" + Kind + "/" + name + ".git", true
		}
		missing = append(missing, name)
		return upstream[name], true // explicit: see reposyaml.Rewrite
	})
	if err != nil {
		return nil, nil, fmt.Errorf("snapshot %s: rewriting the repos.yaml of %s: %w", rec.ID, src, err)
	}
	slices.Sort(missing)
	header := fmt.Sprintf("# repos.yaml of mirrord snapshot %s, sources on %s\n", rec.ID, base)
	return append([]byte(header), out...), missing, nil
}

// ErrNoReposFile means a snapshot keeps no repos.yaml (no git sources, or
// made before mirrord kept it).
var ErrNoReposFile = fmt.Errorf("no repos.yaml")

// storedReposFile reads the repos.yaml kept in rec's git sources' trees:
// that of the first source (by name) that has one.
func storedReposFile(ctx context.Context, cat *snapshot.Catalog, rec *snapshot.Record) ([]byte, string, error) {
	for _, s := range rec.Sources {
		if s.Kind != Kind {
			continue
		}
		tree, err := cat.Tree(ctx, s.Tree)
		if err != nil {
			return nil, "", fmt.Errorf("snapshot %s: %s: %w", rec.ID, s.Key(), err)
		}
		e, ok := tree.Lookup(reposFilePath)
		if !ok {
			continue
		}
		rc, err := cat.Store().Blobs().Open(ctx, e.Digest)
		if err != nil {
			return nil, "", fmt.Errorf("snapshot %s: %s/%s: %w", rec.ID, s.Key(), reposFilePath, err)
		}
		defer rc.Close()
		data, err := io.ReadAll(io.LimitReader(rc, maxReposFile))
		if err != nil {
			return nil, "", fmt.Errorf("snapshot %s: reading %s/%s: %w", rec.ID, s.Key(), reposFilePath, err)
		}
		return data, s.Key(), nil
	}
	return nil, "", fmt.Errorf("snapshot %s: %w (it has no git source made from one; run mirrord sync)", rec.ID, ErrNoReposFile)
}

// InlineReposFile renders repos (the inline git.repos of a config) as a
// stacktira repos.yaml with one group, "mirrord", for configs without a
// git.repos_file.
func InlineReposFile(configPath string, repos []config.GitRepo) ([]byte, error) {
	group := &yaml.Node{Kind: yaml.MappingNode}
	str := func(s string) *yaml.Node {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: yaml.DoubleQuotedStyle}
	}
	for _, r := range repos {
		entry := &yaml.Node{Kind: yaml.MappingNode}
		for _, kv := range [][2]string{{"source", r.URL}, {"dest", r.Dest}, {"ref", r.Ref}} {
			if kv[1] != "" {
				entry.Content = append(entry.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: kv[0]}, str(kv[1]))
			}
		}
		group.Content = append(group.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: r.Name}, entry)
	}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Value: "mirrord"}, group}}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("rendering the inline git.repos as a repos.yaml: %w", err)
	}
	head := fmt.Sprintf("# the inline git.repos of %s, as a repos.yaml\n", strings.ReplaceAll(configPath, "\n", " "))
	return append([]byte(head), out...), nil
}
