package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/requiretool"
	"github.com/mirrord/mirrord/internal/tlstest"
)

// tls: in mirrord.yaml: `serve` speaks HTTPS on listen with a certificate
// from a CA made here; curl and stock apt-get trust that CA and install
// through it; the write API works over HTTPS; and serve refuses to start
// with a token file other users can read.
func TestTLSServe(t *testing.T) {
	curl := requiretool.Path(t, "curl")
	up := demoUpstream(t)
	addr := freePort(t)
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	e := newAptEnv(t, up, addr, "")
	cfg := strings.Replace(aptYAML(up, addr, ""), "public_url: http://", "public_url: https://", 1)
	e.writeConfig(cfg + "tls: {cert_file: " + cert + ", key_file: " + key + "}\n")
	id := e.sync()

	os.Chmod(filepath.Join(e.dir, "token"), 0o644)
	r := e.run("serve", "--listen", addr)
	if r.code != 2 || !strings.Contains(r.stderr, "mode 0644") || !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("serve with a world-readable token: exit %d\n%s", r.code, r.stderr)
	}
	os.Chmod(filepath.Join(e.dir, "token"), 0o600)
	e.serve(addr) // waits for /healthz over plain HTTP on the same port
	base := "https://" + addr

	out, err := exec.Command(curl, "-fsS", "--cacert", ca.CertFile, base+"/keys/mirrord.asc").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "BEGIN PGP PUBLIC KEY BLOCK") {
		t.Fatalf("curl --cacert %s/keys/mirrord.asc: %v\n%s", base, err, out)
	}
	keyFile := filepath.Join(t.TempDir(), "mirrord.asc")
	os.WriteFile(keyFile, out, 0o644)
	if err := exec.Command(curl, "-fsS", "-o", "/dev/null", base+"/keys/mirrord.asc").Run(); err == nil {
		t.Error("curl without the CA accepted the certificate")
	}

	c := aptClient(t, e, keyFile, "--snapshot", id)
	if cc := e.must("client-config", "--snapshot", id); !strings.Contains(cc, "URIs: "+base+"/snapshots/"+id+"/apt/demo/") {
		t.Fatalf("client-config does not use the https public_url:\n%s", cc)
	}
	os.MkdirAll(filepath.Join(c.Dir, "etc", "apt.conf.d"), 0o755)
	os.WriteFile(filepath.Join(c.Dir, "etc", "apt.conf.d", "tls.conf"), []byte(`Acquire::https::CaInfo "`+ca.CertFile+`";`+"\n"), 0o644)
	c.Update()
	checkDebs(t, up.Debs(), c.Download("demo-app"), demoInstall...)

	tc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
	req, _ := http.NewRequest("POST", base+"/api/v1/channels/production/promote", strings.NewReader(`{"snapshot":"`+id+`"}`))
	req.Header.Set("Authorization", "Bearer s3cret")
	res, err := tc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || res.TLS == nil {
		t.Fatalf("promote over https: %d %s", res.StatusCode, body)
	}
}
