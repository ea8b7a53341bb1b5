package deploy

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/requiretool"
)

var update = flag.Bool("update", false, "rewrite the copies of mirror-setup.sh and NodeTemplate in deploy/heat/*.yaml")

const heatDir = "../../deploy/heat"

// The HOT templates carry copies of the set-up script and the node
// template; -update rewrites them, and without it they must match.
func TestHeatTemplatesCarryTheSameText(t *testing.T) {
	blocks := map[string]string{
		"content: |  # internal/deploy/mirror-setup.sh": MirrorSetup,
		"template: |  # deploy.NodeTemplate":            NodeTemplate,
	}
	for _, name := range []string{"mirror.yaml", "node.yaml"} {
		p := filepath.Join(heatDir, name)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		got := fillBlocks(t, data, blocks)
		if *update {
			if err := os.WriteFile(p, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: its copy of mirror-setup.sh or NodeTemplate is stale: run go test ./internal/deploy -run TestHeatTemplatesCarryTheSameText -update", p)
		}
	}
}

// fillBlocks replaces the body of each block scalar whose header line ends
// with a key of blocks by that text, indented two spaces past the header.
func fillBlocks(t *testing.T, data []byte, blocks map[string]string) []byte {
	lines := strings.SplitAfter(string(data), "\n")
	var out strings.Builder
	for i := 0; i < len(lines); i++ {
		out.WriteString(lines[i])
		trimmed := strings.TrimSpace(lines[i])
		text, ok := "", false
		for hdr, v := range blocks {
			if strings.HasSuffix(trimmed, hdr) {
				text, ok = v, true
			}
		}
		if !ok {
			continue
		}
		indent := len(lines[i]) - len(strings.TrimLeft(lines[i], " "))
		for i+1 < len(lines) && (strings.TrimSpace(lines[i+1]) == "" || len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")) > indent) {
			i++
		}
		pad := strings.Repeat(" ", indent+2)
		for _, l := range strings.SplitAfter(strings.TrimSuffix(text, "\n"), "\n") {
			if strings.TrimSpace(l) == "" {
				out.WriteString("\n")
				continue
			}
			out.WriteString(pad + strings.TrimSuffix(l, "\n") + "\n")
		}
	}
	return []byte(out.String())
}

// heatValues stand in for what Heat knows at stack creation.
var heatValues = map[string]string{
	"floating_ip.floating_ip_address": "203.0.113.10",
	"data_volume":                     "0f9e8d7c-6b5a-4938-8271-605f4e3d2c1b",
}

// resolve evaluates the HOT functions the templates use (get_param,
// get_resource, get_attr, list_join, str_replace) on v.
func resolve(t *testing.T, v any, params map[string]any) any {
	t.Helper()
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for fn, arg := range x {
				switch fn {
				case "get_param":
					p, ok := params[arg.(string)]
					if !ok {
						t.Fatalf("get_param %v: no such parameter given", arg)
					}
					return p
				case "get_resource":
					return heatValues[arg.(string)]
				case "get_attr":
					a := arg.([]any)
					return heatValues[a[0].(string)+"."+a[1].(string)]
				case "list_join":
					a := arg.([]any)
					var parts []string
					for _, p := range resolve(t, a[1], params).([]any) {
						parts = append(parts, toString(p))
					}
					return strings.Join(parts, a[0].(string))
				case "str_replace":
					m := arg.(map[string]any)
					s := resolve(t, m["template"], params).(string)
					ps := resolve(t, m["params"], params).(map[string]any)
					keys := make([]string, 0, len(ps))
					for k := range ps {
						keys = append(keys, k)
					}
					sort.Slice(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
					for _, k := range keys {
						s = strings.ReplaceAll(s, k, toString(ps[k]))
					}
					return s
				}
			}
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = resolve(t, e, params)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolve(t, e, params)
		}
		return out
	}
	return v
}

func toString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func loadYAML(t *testing.T, path string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

func exampleParams(t *testing.T) map[string]any {
	env := loadYAML(t, filepath.Join(heatDir, "environments", "example.yaml"))
	return env["parameters"].(map[string]any)
}

func dig(t *testing.T, v any, keys ...string) any {
	t.Helper()
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok || m[k] == nil {
			t.Fatalf("template has no %s", strings.Join(keys, "."))
		}
		v = m[k]
	}
	return v
}

// mirror.yaml's user-data, resolved as Heat would with the example
// environment, is the one `mirrord cloud-init mirror` renders for the
// same inputs; its node_user_data output and node.yaml's user-data are
// what `mirrord cloud-init node` renders.
func TestHeatUserDataMatchesCloudInit(t *testing.T) {
	params := exampleParams(t)
	hot := loadYAML(t, filepath.Join(heatDir, "mirror.yaml"))
	heat := resolve(t, dig(t, hot, "resources", "user_data", "properties", "cloud_config"), params)
	ud, err := Mirror{
		Sources: []byte(params["mirrord_config"].(string)), Channel: params["channel"].(string),
		PackageURL: params["package_url"].(string), ConsulJoin: params["consul_join"].(string),
		VolumeID: heatValues["data_volume"], PublicURL: "http://203.0.113.10:8080",
	}.UserData()
	if err != nil {
		t.Fatal(err)
	}
	var ours any
	if err := yaml.Unmarshal(ud, &ours); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(heat, ours) {
		hj, _ := json.MarshalIndent(heat, "", " ")
		oj, _ := json.MarshalIndent(ours, "", " ")
		t.Errorf("mirror.yaml's user-data differs from cloud-init mirror's:\nheat: %s\nours: %s", hj, oj)
	}

	// What Heat's OS::Heat::CloudConfig hands the server passes the schema too.
	hud, err := yaml.Marshal(heat)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cloudInitSchema(t, append([]byte("#cloud-config\n"), hud...)); err != nil || !strings.Contains(out, "Valid cloud-config") {
		t.Errorf("mirror.yaml's user-data: cloud-init schema: %v\n%s", err, out)
	}

	want, err := Node{BootstrapURL: "http://203.0.113.10:8080/channels/production/bootstrap.sh", CloneDir: DefaultCloneDir}.UserData()
	if err != nil {
		t.Fatal(err)
	}
	if got := resolve(t, dig(t, hot, "outputs", "node_user_data", "value"), params); got != string(want) {
		t.Errorf("mirror.yaml node_user_data:\n%v\nwant:\n%s", got, want)
	}
	node := loadYAML(t, filepath.Join(heatDir, "node.yaml"))
	np := map[string]any{"mirror_address": "203.0.113.10", "channel": "production", "clone_dir": DefaultCloneDir}
	if got := resolve(t, dig(t, node, "resources", "server", "properties", "user_data"), np); got != string(want) {
		t.Errorf("node.yaml user_data:\n%v\nwant:\n%s", got, want)
	}
}

// heatCloud is what the validator's stubbed cloud has.
const heatCloud = `{"glance.image": ["debian-12-genericcloud"], "nova.flavor": ["m1.medium"],
 "nova.keypair": ["ops"], "neutron.network": ["public", "private"]}`

type heatJob struct {
	Template string   `json:"template"`
	Envs     []string `json:"envs"`
}

// validateHOT runs deploy/heat/validate.py (Heat's engine code) on every
// job in one process and returns its line per job.
func validateHOT(t *testing.T, jobs []heatJob) []string {
	t.Helper()
	dir := t.TempDir()
	cloud, jobsFile := filepath.Join(dir, "cloud.json"), filepath.Join(dir, "jobs.json")
	data, _ := json.Marshal(jobs)
	if err := os.WriteFile(cloud, []byte(heatCloud), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(jobsFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", filepath.Join(heatDir, "validate.py"), cloud, "--jobs", jobsFile)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(jobs) {
		t.Fatalf("validate.py: %v: %d result lines for %d templates\n%s%s", err, len(lines), len(jobs), out.String(), errb.String())
	}
	return lines
}

func requireHeat(t *testing.T) {
	t.Helper()
	if _, err := os.Stat("/usr/lib/python3/dist-packages/heat/engine/stack.py"); err != nil {
		requiretool.Missing(t, "Debian's python3-heat is not installed (.ci/apt-packages): "+err.Error())
	}
}

// Every template passes Heat's own strict validation; broken ones fail
// with Heat's message.
func TestHeatValidate(t *testing.T) {
	requireHeat(t)
	example := filepath.Join(heatDir, "environments", "example.yaml")
	nodeEnv := filepath.Join(t.TempDir(), "node-env.yaml")
	os.WriteFile(nodeEnv, []byte("parameters: {image: debian-12-genericcloud, flavor: m1.medium, key_name: ops, private_net: private, mirror_address: 203.0.113.10}\n"), 0o644)
	joinEnv := filepath.Join(t.TempDir(), "join-env.yaml")
	os.WriteFile(joinEnv, []byte("parameters: {consul_join: 10.0.0.5}\n"), 0o644)
	good := []struct {
		template  string
		envs      []string
		resources string
	}{
		{"mirror.yaml", []string{example}, "7 resources"},
		{"mirror.yaml", []string{example, joinEnv}, "10 resources"}, // the Consul rules
		{"node.yaml", []string{nodeEnv}, "1 resources"},
	}
	var jobs []heatJob
	for _, tc := range good {
		jobs = append(jobs, heatJob{filepath.Join(heatDir, tc.template), tc.envs})
	}
	src, _ := os.ReadFile(filepath.Join(heatDir, "mirror.yaml"))
	broken := []struct{ name, old, new, want string }{
		{"unknown property", "instance_uuid:", "instance_id:", "Unknown Property instance_id"},
		{"unknown resource type", "type: OS::Cinder::Volume\n", "type: OS::Cinder::Volum\n", "OS::Cinder::Volum) could not be found"},
		{"bad get_attr", "{get_attr: [floating_ip, floating_ip_address]}, \":8080\"", "{get_attr: [floating_ipx, floating_ip_address]}, \":8080\"", `"floating_ipx"`},
		{"missing parameter", "{get_param: flavor}", "{get_param: flavour}", "flavour) was not provided"},
		{"unknown image", "image: {get_param: image}", "image: no-such-image", "no-such-image"},
	}
	for _, tc := range broken {
		b := bytes.Replace(src, []byte(tc.old), []byte(tc.new), 1)
		if bytes.Equal(b, src) {
			t.Fatalf("%s: %q is not in mirror.yaml", tc.name, tc.old)
		}
		p := filepath.Join(t.TempDir(), "broken.yaml")
		os.WriteFile(p, b, 0o644)
		jobs = append(jobs, heatJob{p, []string{example}})
	}
	out := validateHOT(t, jobs)
	for i, tc := range good {
		if !strings.HasPrefix(out[i], "OK ") || !strings.Contains(out[i], tc.resources) {
			t.Errorf("%s %v: %s (want OK with %s)", tc.template, tc.envs, out[i], tc.resources)
		}
	}
	for i, tc := range broken {
		if got := out[len(good)+i]; !strings.HasPrefix(got, "INVALID ") || !strings.Contains(got, tc.want) {
			t.Errorf("%s: %s (want INVALID with %q)", tc.name, got, tc.want)
		}
	}
}

// The example environment's mirrord_config, completed as the set-up
// script completes it, is a valid mirrord.yaml.
func TestExampleSourcesAreAValidConfig(t *testing.T) {
	params := exampleParams(t)
	p := filepath.Join(t.TempDir(), "mirrord.yaml")
	body := "data_dir: /var/lib/mirrord\nlisten: 0.0.0.0:8080\npublic_url: http://203.0.113.10:8080\nauth: {token_file: /etc/mirrord/token}\n" +
		params["mirrord_config"].(string)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := config.Load(p); err != nil {
		t.Errorf("example.yaml's mirrord_config: %v", err)
	}
}
