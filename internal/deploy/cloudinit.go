package deploy

import (
	_ "embed"
	"fmt"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// MirrorSetup is the mirror VM's set-up script, installed by the mirror
// user-data as SetupPath and run by its runcmd. deploy/heat/mirror.yaml
// carries the same text (a test keeps them equal).
//
//go:embed mirror-setup.sh
var MirrorSetup string

// Files the mirror user-data writes.
const (
	SetupPath   = "/usr/local/sbin/mirrord-setup"
	SetupEnv    = "/etc/mirrord/setup.env"
	SourcesPath = "/etc/mirrord/sources.yaml"
)

// SetupEnvTemplate is the text of SetupEnv; each $name is replaced by a
// Mirror field (Heat's str_replace does the same in mirror.yaml).
const SetupEnvTemplate = `MIRRORD_CHANNEL='$channel'
MIRRORD_PACKAGE_URL='$package_url'
MIRRORD_CONSUL_JOIN='$consul_join'
MIRRORD_VOLUME_ID='$volume_id'
MIRRORD_DEVICE='$device'
MIRRORD_PUBLIC_URL='$public_url'
MIRRORD_LISTEN='$listen'
`

// DefaultListen is where the mirror listens (the stack's security group
// opens its port).
const DefaultListen = "0.0.0.0:8080"

// Mirror is the mirror VM's user-data.
type Mirror struct {
	// Sources is the sources part of a mirrord.yaml (apt:, yum:, git:,
	// file:, sync:); the set-up script adds data_dir, listen, public_url,
	// auth and consul. See SourcesOf.
	Sources    []byte
	Channel    string // promoted after the first sync; default production
	PackageURL string // the .deb or .rpm; "": the mirrord package of the VM's repositories
	ConsulJoin string // optional Consul address to join
	VolumeID   string // optional Cinder volume (found under /dev/disk/by-id)
	Device     string // optional block device of the data volume (instead of VolumeID)
	PublicURL  string // "": http://<first address>:<port>
	Listen     string // default DefaultListen
}

type writeFile struct {
	Path        string `yaml:"path"`
	Permissions string `yaml:"permissions"`
	Content     string `yaml:"content"`
}

type mirrorConfig struct {
	WriteFiles []writeFile `yaml:"write_files"`
	Runcmd     [][]string  `yaml:"runcmd"`
}

var channelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// UserData renders the #cloud-config: write SetupEnv, SourcesPath and
// SetupPath, then run SetupPath.
func (m Mirror) UserData() ([]byte, error) {
	if m.Channel == "" {
		m.Channel = "production"
	}
	if m.Listen == "" {
		m.Listen = DefaultListen
	}
	if !channelRE.MatchString(m.Channel) {
		return nil, fmt.Errorf("channel %q: use letters, digits, '.', '_' and '-'", m.Channel)
	}
	env, err := fill(SetupEnvTemplate, map[string]string{
		"channel": m.Channel, "package_url": m.PackageURL, "consul_join": m.ConsulJoin,
		"volume_id": m.VolumeID, "device": m.Device, "public_url": m.PublicURL, "listen": m.Listen,
	})
	if err != nil {
		return nil, err
	}
	if len(strings.TrimSpace(string(m.Sources))) == 0 {
		return nil, fmt.Errorf("mirror user-data: no sources (the config's apt:, yum:, git: or file: entries)")
	}
	cc := mirrorConfig{
		WriteFiles: []writeFile{
			{Path: SetupEnv, Permissions: "0600", Content: env},
			{Path: SourcesPath, Permissions: "0600", Content: string(m.Sources)},
			{Path: SetupPath, Permissions: "0755", Content: MirrorSetup},
		},
		Runcmd: [][]string{{SetupPath}},
	}
	body, err := marshal(cc)
	if err != nil {
		return nil, err
	}
	head := "#cloud-config\n# mirrord mirror: mount the data volume, install mirrord, first sync, promote\n" +
		"# (from `mirrord cloud-init mirror`; deploy/heat/mirror.yaml builds the same)\n"
	return append([]byte(head), body...), nil
}

// fill replaces every $name of tmpl by vars[name]. Values must fit in a
// single-quoted sh word on one line.
func fill(tmpl string, vars map[string]string) (string, error) {
	var pairs []string
	for k, v := range vars {
		if strings.ContainsAny(v, "'\"\n\\") {
			return "", fmt.Errorf("%s %q: quotes, backslashes and newlines are not allowed", k, v)
		}
		pairs = append(pairs, "$"+k, v)
	}
	return strings.NewReplacer(pairs...).Replace(tmpl), nil
}

// deployKeys are the mirrord.yaml keys the mirror's set-up script writes
// itself; SourcesOf drops them.
var deployKeys = map[string]bool{"data_dir": true, "listen": true, "public_url": true, "auth": true, "signing": true, "consul": true, "tls": true}

// SourcesOf returns a mirrord.yaml without the keys the mirror VM sets
// (data_dir, listen, public_url, auth, signing, consul, tls), comments and
// order kept, and the names of the keys it dropped.
func SourcesOf(config []byte) ([]byte, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return nil, nil, err
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, nil, fmt.Errorf("expected a mapping of mirrord.yaml keys")
	}
	m := doc.Content[0]
	var kept []*yaml.Node
	var dropped []string
	for i := 0; i+1 < len(m.Content); i += 2 {
		if deployKeys[m.Content[i].Value] {
			dropped = append(dropped, m.Content[i].Value)
			continue
		}
		kept = append(kept, m.Content[i], m.Content[i+1])
	}
	m.Content = kept
	out, err := marshal(&doc)
	return out, dropped, err
}

// marshal encodes v as YAML indented by two spaces.
func marshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return []byte(b.String()), nil
}

// NodeTemplate is a node's user-data; $bootstrap_url and $clone_dir are
// replaced (deploy/heat/node.yaml and mirror.yaml's node_user_data output
// use the same text with Heat's str_replace). An empty clone_dir clones
// nothing.
const NodeTemplate = `#cloud-config
# mirrord node: apt, yum and git from the mirror, and the git repos cloned
# (from ` + "`mirrord cloud-init node`" + `; deploy/heat/node.yaml holds the same text)
runcmd:
  - "curl -fsS --retry 10 --retry-connrefused -o /run/mirrord-bootstrap.sh '$bootstrap_url' && sh /run/mirrord-bootstrap.sh --clone '$clone_dir'"
`

// DefaultCloneDir is where nodes clone the git repositories.
const DefaultCloneDir = "/srv/repos"

// Node is a node's user-data.
type Node struct {
	BootstrapURL string // ".../channels/C/bootstrap.sh"
	CloneDir     string // "" clones nothing
}

// UserData renders NodeTemplate.
func (n Node) UserData() ([]byte, error) {
	if !strings.HasPrefix(n.BootstrapURL, "http://") && !strings.HasPrefix(n.BootstrapURL, "https://") {
		return nil, fmt.Errorf("bootstrap URL %q: want http:// or https://", n.BootstrapURL)
	}
	s, err := fill(NodeTemplate, map[string]string{"bootstrap_url": n.BootstrapURL, "clone_dir": n.CloneDir})
	return []byte(s), err
}
