package yum

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// writeUpdateinfo keeps the advisories that still apply to the selected
// packages (keys from nevraSet): each <update> loses the <package>
// entries that are not selected, collections left empty go, and an
// update left with no package at all is dropped. With adv, only the
// advisories it selects are kept.
func writeUpdateinfo(rd io.Reader, w io.Writer, selected map[string]bool, adv *Advisories) error {
	isSelected := func(elem []xml.Token) bool {
		s := elem[0].(xml.StartElement)
		return selected[nevraKey(attr(s, "name"), attr(s, "epoch"), attr(s, "version"), attr(s, "release"), attr(s, "arch"))]
	}
	_, err := filterChildren(rd, w, childFilter{
		keep: func(start xml.StartElement, _ int) bool { return start.Name.Local == "update" },
		whole: func(toks []xml.Token) ([]xml.Token, bool) {
			if !advisoryKept(toks, adv) {
				return nil, false
			}
			toks = dropElements(toks, "package", isSelected)
			toks = dropElements(toks, "collection", func(elem []xml.Token) bool { return countElements(elem, "package") > 0 })
			return toks, countElements(toks, "package") > 0
		},
	})
	return err
}

// dropElements removes each element called name (with its content) that
// keep rejects; keep gets the element's tokens, start to end.
func dropElements(toks []xml.Token, name string, keep func(elem []xml.Token) bool) []xml.Token {
	out := make([]xml.Token, 0, len(toks))
	for i := 0; i < len(toks); i++ {
		s, ok := toks[i].(xml.StartElement)
		if !ok || s.Name.Local != name {
			out = append(out, toks[i])
			continue
		}
		end := matchingEnd(toks, i)
		if keep(toks[i : end+1]) {
			out = append(out, toks[i:end+1]...)
		}
		i = end
	}
	return out
}

// matchingEnd returns the index of the end tag closing toks[start].
func matchingEnd(toks []xml.Token, start int) int {
	depth := 0
	for i := start; i < len(toks); i++ {
		switch toks[i].(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return len(toks) - 1
}

func countElements(toks []xml.Token, name string) int {
	n := 0
	for _, t := range toks {
		if s, ok := t.(xml.StartElement); ok && s.Name.Local == name {
			n++
		}
	}
	return n
}

// writeModules keeps the modulemd documents of modules.yaml that ship at
// least one selected package (artifacts, as name-epoch:version-release.arch),
// the defaults, obsoletes and translations of those modules, and any
// document of a kind it does not know.
func writeModules(rd io.Reader, w io.Writer, selected map[string]bool) error {
	docs, err := readYAMLDocs(rd)
	if err != nil {
		return err
	}
	modules := map[string]bool{}
	for _, d := range docs {
		if yamlString(d, "document") == "modulemd" && shipsSelected(d, selected) {
			modules[yamlString(d, "data", "name")] = true
		}
	}
	bw := bufio.NewWriter(w)
	for _, d := range docs {
		keep := true
		switch yamlString(d, "document") {
		case "modulemd":
			keep = modules[yamlString(d, "data", "name")] && shipsSelected(d, selected)
		case "modulemd-defaults", "modulemd-obsoletes", "modulemd-translations":
			keep = modules[yamlString(d, "data", "module")]
		}
		if !keep {
			continue
		}
		out, err := yaml.Marshal(d)
		if err != nil {
			return fmt.Errorf("modules.yaml: %w", err)
		}
		bw.WriteString("---\n")
		bw.Write(out)
		bw.WriteString("...\n")
	}
	return bw.Flush()
}

func readYAMLDocs(rd io.Reader) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(rd)
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("modules.yaml document %d: %w", len(docs)+1, err)
		}
		docs = append(docs, &n)
	}
}

func shipsSelected(doc *yaml.Node, selected map[string]bool) bool {
	rpms := yamlLookup(doc, "data", "artifacts", "rpms")
	if rpms == nil {
		return false
	}
	for _, a := range rpms.Content {
		if selected[a.Value] {
			return true
		}
	}
	return false
}

// yamlLookup follows mapping keys from a document (or mapping) node.
func yamlLookup(n *yaml.Node, keys ...string) *yaml.Node {
	if n != nil && n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	for _, k := range keys {
		if n == nil || n.Kind != yaml.MappingNode {
			return nil
		}
		var next *yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			if n.Content[i].Value == k {
				next = n.Content[i+1]
				break
			}
		}
		n = next
	}
	return n
}

func yamlString(n *yaml.Node, keys ...string) string {
	if v := yamlLookup(n, keys...); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}
