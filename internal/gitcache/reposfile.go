package gitcache

import (
	"bytes"
	"errors"
	"fmt"

	"gopkg.in/yaml.v3"
)

// RewriteReposFile returns a stacktira-style repos.yaml (see
// config.LoadRepos) with the source of every entry set to mirrorURL(name),
// as an entry-level value, which overrides group and top-level ones. Entries
// for which mirrorURL returns false keep their source. Everything else
// (variables, groups, dest, ref, comments) is kept, so tools that read the
// file find the same repositories, served by the mirror. data must already
// have been validated with config.ParseRepos.
func RewriteReposFile(data []byte, mirrorURL func(name string) (string, bool)) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	if len(doc.Content) == 0 {
		return data, nil
	}
	expandAliases(&doc)
	groups := mapValue(doc.Content[0], "repos")
	if groups == nil {
		return data, nil
	}
	if groups.Kind != yaml.MappingNode {
		return nil, errors.New("repos: expected a mapping of groups")
	}
	for i := 1; i < len(groups.Content); i += 2 {
		entries := mapValue(groups.Content[i], "repos")
		if entries == nil || entries.Kind != yaml.MappingNode {
			continue
		}
		for j := 0; j+1 < len(entries.Content); j += 2 {
			if u, ok := mirrorURL(entries.Content[j].Value); ok {
				entries.Content[j+1] = withSource(entries.Content[j+1], u)
			}
		}
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("encoding repos file: %w", err)
	}
	return b.Bytes(), enc.Close()
}

// mapValue returns the value of key in mapping n (following aliases), or nil.
func mapValue(n *yaml.Node, key string) *yaml.Node {
	n = resolveAlias(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return resolveAlias(n.Content[i+1])
		}
	}
	return nil
}

func resolveAlias(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

// expandAliases replaces every alias in the tree under n by a copy of what
// it names and drops the anchors, so entries that shared a mapping can be
// rewritten one by one.
func expandAliases(n *yaml.Node) {
	n.Anchor = ""
	for i, c := range n.Content {
		if c.Kind == yaml.AliasNode {
			c = deepCopy(resolveAlias(c))
			n.Content[i] = c
		}
		expandAliases(c)
	}
}

func deepCopy(n *yaml.Node) *yaml.Node {
	c := *n
	c.Content = make([]*yaml.Node, len(n.Content))
	for i, k := range n.Content {
		c.Content[i] = deepCopy(resolveAlias(k))
	}
	return &c
}

// withSource returns entry (a mapping or null) as a mapping whose source
// is u.
func withSource(entry *yaml.Node, u string) *yaml.Node {
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Style: entry.Style, HeadComment: entry.HeadComment, LineComment: entry.LineComment}
	if entry.Kind == yaml.MappingNode {
		out.Content = append(out.Content, entry.Content...)
	}
	val := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: u}
	for i := 0; i+1 < len(out.Content); i += 2 {
		if out.Content[i].Value == "source" {
			out.Content[i+1] = val
			return out
		}
	}
	key := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "source"}
	out.Content = append([]*yaml.Node{key, val}, out.Content...)
	return out
}
