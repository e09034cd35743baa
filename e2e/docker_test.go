package e2e

// The container image, as far as this machine can go without a Docker
// engine: build the static binary the Dockerfile builds, assemble the image
// the Dockerfile describes with go-containerregistry (on an empty base,
// since no registry is reachable for distroless), write it as a docker
// tarball, read it back and check its config, then run its entrypoint and
// healthcheck from the extracted layer as the image's non-root user.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-json"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"trove/internal/testutil"
)

// dfInstr is one Dockerfile instruction.
type dfInstr struct {
	cmd, args string // cmd upper-cased
}

// dfStage is one FROM and what follows it.
type dfStage struct {
	from, name string
	instrs     []dfInstr
}

func (s *dfStage) all(cmd string) []string {
	var out []string
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

// parseDockerfile reads the instructions of a Dockerfile: comments and
// blank lines dropped, continuation lines joined, split into stages.
func parseDockerfile(t *testing.T, path string) []dfStage {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []dfStage
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		in := dfInstr{strings.ToUpper(cmd), strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			from, name, _ := strings.Cut(in.args, " ")
			if _, n, ok := strings.Cut(strings.ToUpper(name), "AS "); ok {
				name = strings.TrimSpace(strings.ToLower(n))
			}
			stages = append(stages, dfStage{from: from, name: name})
			return
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile: %s before the first FROM", in.cmd)
			}
			return
		}
		s := &stages[len(stages)-1]
		s.instrs = append(s.instrs, in)
	}
	for line := range strings.Lines(string(b)) {
		line = strings.TrimRight(line, "\r\n")
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if l, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(l + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// jsonArray parses an exec-form argument list.
func jsonArray(t *testing.T, what, s string) []string {
	t.Helper()
	var a []string
	if err := json.Unmarshal([]byte(s), &a); err != nil || len(a) == 0 {
		t.Fatalf("Dockerfile: %s %s is not in exec form (a JSON array of strings)", what, s)
	}
	return a
}

// fullyQualified reports whether an image reference names its registry, by
// the rule engines use: the first path component holds a '.' or a ':' or is
// localhost. "scratch" is no image, so it needs none.
func fullyQualified(ref string) bool {
	if ref == "scratch" {
		return true
	}
	host, _, ok := strings.Cut(ref, "/")
	return ok && (strings.ContainsAny(host, ".:") || host == "localhost")
}

// imageSpec is what the Dockerfile says of the runtime image.
type imageSpec struct {
	config   v1.Config
	uid, gid int
	binary   string            // where the binary goes (the entrypoint)
	dirs     map[string][2]int // directory -> owner uid, gid
}

// runtimeSpec reads the final dfStage and checks the build dfStage.
func runtimeSpec(t *testing.T, stages []dfStage) imageSpec {
	t.Helper()
	if len(stages) != 2 {
		t.Fatalf("Dockerfile: %d stages; want a build dfStage and a runtime dfStage", len(stages))
	}
	build, rt := stages[0], stages[1]
	if build.from != "docker.io/library/golang:1.26" {
		t.Errorf("Dockerfile: the build dfStage is FROM %s; want docker.io/library/golang:1.26", build.from)
	}
	for _, st := range stages {
		if !fullyQualified(st.from) {
			t.Errorf("Dockerfile: FROM %s is a short name, which podman (and any engine without a default registry) refuses; name the registry (docker.io/library/…, gcr.io/…)", st.from)
		}
	}
	var buildRun string
	for _, r := range build.all("RUN") {
		if strings.Contains(r, "go build") {
			buildRun = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=0 go build", "-trimpath", `-ldflags "-s -w`, "-o /out/trove"} {
		if !strings.Contains(buildRun, want) {
			t.Errorf("Dockerfile: the build dfStage's go build (%q) lacks %q", buildRun, want)
		}
	}
	if rt.from != "gcr.io/distroless/static-debian12:nonroot" && rt.from != "scratch" {
		t.Errorf("Dockerfile: the runtime dfStage is FROM %s; want distroless static nonroot or scratch", rt.from)
	}

	spec := imageSpec{dirs: map[string][2]int{}}
	c := &spec.config
	one := func(cmd string) string {
		v := rt.all(cmd)
		if len(v) != 1 {
			t.Fatalf("Dockerfile: the runtime dfStage has %d %s lines; want one", len(v), cmd)
		}
		return v[0]
	}
	c.User = one("USER")
	u, g, _ := strings.Cut(c.User, ":")
	var err1, err2 error
	spec.uid, err1 = strconv.Atoi(u)
	spec.gid, err2 = strconv.Atoi(g)
	if err1 != nil || err2 != nil {
		t.Fatalf("Dockerfile: USER %s; want numeric UID:GID (works on scratch too)", c.User)
	}
	c.ExposedPorts = map[string]struct{}{}
	for _, p := range strings.Fields(one("EXPOSE")) {
		if !strings.Contains(p, "/") {
			p += "/tcp"
		}
		c.ExposedPorts[p] = struct{}{}
	}
	c.Volumes = map[string]struct{}{}
	vol := one("VOLUME")
	vols := strings.Fields(vol)
	if strings.HasPrefix(vol, "[") {
		vols = jsonArray(t, "VOLUME", vol)
	}
	for _, v := range vols {
		c.Volumes[v] = struct{}{}
	}
	for _, env := range rt.all("ENV") {
		for _, kv := range strings.Fields(env) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("Dockerfile: ENV %s; write ENV KEY=VALUE …", env)
			}
			c.Env = append(c.Env, k+"="+strings.Trim(v, `"`))
		}
	}
	hc := one("HEALTHCHECK")
	c.Healthcheck = &v1.HealthConfig{}
	for {
		opt, rest, _ := strings.Cut(hc, " ")
		if !strings.HasPrefix(opt, "--") {
			break
		}
		hc = strings.TrimSpace(rest)
		k, v, _ := strings.Cut(strings.TrimPrefix(opt, "--"), "=")
		var err error
		switch k {
		case "interval":
			c.Healthcheck.Interval, err = time.ParseDuration(v)
		case "timeout":
			c.Healthcheck.Timeout, err = time.ParseDuration(v)
		case "start-period":
			c.Healthcheck.StartPeriod, err = time.ParseDuration(v)
		case "retries":
			c.Healthcheck.Retries, err = strconv.Atoi(v)
		default:
			err = fmt.Errorf("unknown option")
		}
		if err != nil {
			t.Fatalf("Dockerfile: HEALTHCHECK %s: %v", opt, err)
		}
	}
	kind, test, _ := strings.Cut(hc, " ")
	if kind != "CMD" {
		t.Fatalf("Dockerfile: HEALTHCHECK %s; want CMD [...]", hc)
	}
	c.Healthcheck.Test = append([]string{"CMD"}, jsonArray(t, "HEALTHCHECK CMD", test)...)
	c.Entrypoint = jsonArray(t, "ENTRYPOINT", one("ENTRYPOINT"))
	c.Cmd = jsonArray(t, "CMD", one("CMD"))
	spec.binary = c.Entrypoint[0]

	// What the COPY lines bring: the binary, and empty directories.
	sawBinary := false
	for _, cp := range rt.all("COPY") {
		f := strings.Fields(cp)
		owner := [2]int{0, 0}
		var paths []string
		for _, a := range f {
			switch {
			case strings.HasPrefix(a, "--from="):
			case strings.HasPrefix(a, "--chown="):
				u, g, _ := strings.Cut(strings.TrimPrefix(a, "--chown="), ":")
				owner[0], _ = strconv.Atoi(u)
				owner[1], _ = strconv.Atoi(g)
			default:
				paths = append(paths, a)
			}
		}
		if len(paths) != 2 {
			t.Fatalf("Dockerfile: COPY %s; want one source and one destination", cp)
		}
		switch dst := paths[1]; {
		case dst == spec.binary && paths[0] == "/out/trove":
			sawBinary = true
		case slices.Contains(vols, dst):
			spec.dirs[dst] = owner
		default:
			t.Fatalf("Dockerfile: COPY %s; this test knows only the binary and the volume directories", cp)
		}
	}
	if !sawBinary {
		t.Fatalf("Dockerfile: no COPY puts /out/trove at the entrypoint %s", spec.binary)
	}
	return spec
}

// layerTar is the image's one layer: the binary and the directories.
func layerTar(t *testing.T, spec imageSpec, binary []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(0, 0)
	for _, d := range slices.Sorted(maps.Keys(spec.dirs)) {
		o := spec.dirs[d]
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755, Uid: o[0], Gid: o[1], ModTime: mtime})
	}
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(spec.binary, "/"), Size: int64(len(binary)), Mode: 0o755, ModTime: mtime})
	tw.Write(binary)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// buildStatic builds the binary as the Dockerfile does.
func buildStatic(t *testing.T, out string) {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goCmd, "build", "-trimpath", "-ldflags", "-s -w -X main.version=docker-test", "-o", out, ".")
	cmd.Dir = moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("CGO_ENABLED=0 go build: %v\n%s", err, b)
	}
	t.Logf("built the static binary in %s", time.Since(start).Round(time.Millisecond))
}

// checkStatic checks that the binary is a static, stripped ELF file.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary has a PT_INTERP program header: it is dynamically linked")
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Error("the binary has a PT_DYNAMIC program header")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary needs shared libraries %q (DT_NEEDED)", libs)
	}
	if f.Section(".symtab") != nil {
		t.Error("the binary has a symbol table: -ldflags \"-s\" was not applied")
	}
}

// extract writes the image's file system into root, with the owners it
// gives when running as root.
func extractImage(t *testing.T, img v1.Image, root string) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, filepath.FromSlash(path.Clean("/"+h.Name)))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, os.FileMode(h.Mode)&0o7777); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, os.FileMode(h.Mode)&0o7777)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(f, tr); err != nil {
				t.Fatal(err)
			}
			f.Close()
		default:
			t.Fatalf("the image holds %s of type %c", h.Name, h.Typeflag)
		}
		if os.Getuid() == 0 {
			if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// containerEnv is the image's environment with its paths moved under root
// and TROVE_LISTEN set to listen.
func containerEnv(cfg v1.Config, root, listen string) []string {
	var env []string
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		if _, ok := cfg.Volumes[v]; ok {
			v = filepath.Join(root, v)
		}
		if k == "TROVE_LISTEN" {
			v = listen
		}
		env = append(env, k+"="+v)
	}
	return env
}

func TestDockerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it")
	}
	if runtime.GOOS != "linux" {
		t.Skip("the image is linux/" + runtime.GOARCH)
	}
	spec := runtimeSpec(t, parseDockerfile(t, filepath.Join(moduleRoot, "Dockerfile")))
	if spec.uid == 0 || spec.gid == 0 {
		t.Errorf("USER %s: want a non-root user and group", spec.config.User)
	}

	// A work directory that the image's user can reach (t.TempDir's
	// parent is 0700).
	work, err := os.MkdirTemp("", "trove-docker-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(work) })
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(work, "trove-static")
	buildStatic(t, bin)
	checkStatic(t, bin)
	binary, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}

	// Assemble, write and read back the image.
	start := time.Now()
	lt := layerTar(t, spec, binary)
	// Uncompressed, as `docker save` writes layers: gzip under -race
	// would take most of this test's time.
	layer := static.NewLayer(lt, types.DockerUncompressedLayer)
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", runtime.GOARCH, spec.config
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag("trove:test")
	if err != nil {
		t.Fatal(err)
	}
	imgPath := filepath.Join(work, "trove-image.tar")
	if err := tarball.WriteToFile(imgPath, tag, img); err != nil {
		t.Fatal(err)
	}
	if img, err = tarball.ImageFromPath(imgPath, &tag); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote and read back the image in %s", time.Since(start).Round(time.Millisecond))
	// Fast: the layer's contents are checked below, byte for byte.
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Fatalf("the image tarball does not validate: %v", err)
	}
	t.Logf("validated in %s", time.Since(start).Round(time.Millisecond))
	if cf, err = img.ConfigFile(); err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if b, err := json.Marshal(c); err == nil {
		t.Logf("image config, from the Dockerfile: %s", b)
	}
	if u, _, _ := strings.Cut(c.User, ":"); u == "" || u == "0" || u == "root" {
		t.Errorf("image user %q; want a non-root user", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"/trove"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("image entrypoint %q, cmd %q; want [/trove] [serve]", c.Entrypoint, c.Cmd)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok || len(c.ExposedPorts) != 1 {
		t.Errorf("image exposes %v; want 8080/tcp", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("image volumes %v; want /data", c.Volumes)
	}
	for _, kv := range []string{"TROVE_DATA=/data", "TROVE_LISTEN=:8080"} {
		if !slices.Contains(c.Env, kv) {
			t.Errorf("image env %q lacks %s", c.Env, kv)
		}
	}
	if c.Healthcheck == nil || !slices.Equal(c.Healthcheck.Test, []string{"CMD", "/trove", "healthcheck"}) || c.Healthcheck.Interval <= 0 || c.Healthcheck.Timeout <= 0 {
		t.Errorf("image healthcheck %+v; want CMD /trove healthcheck with an interval and a timeout", c.Healthcheck)
	}

	// Run it from the extracted layer, as the image's user.
	root := filepath.Join(work, "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	extractImage(t, img, root)
	t.Logf("extracted in %s", time.Since(start).Round(time.Millisecond))
	if got, err := os.ReadFile(filepath.Join(root, spec.binary)); err != nil || !bytes.Equal(got, binary) {
		t.Fatalf("the binary extracted from the image differs from the one built (%v)", err)
	}
	for d, o := range spec.dirs {
		fi, err := os.Stat(filepath.Join(root, d))
		if err != nil || !fi.IsDir() {
			t.Fatalf("the image has no directory %s (%v)", d, err)
		}
		if st := fi.Sys().(*syscall.Stat_t); os.Getuid() == 0 && (int(st.Uid) != o[0] || int(st.Gid) != o[1]) {
			t.Errorf("%s is owned by %d:%d; want %d:%d", d, st.Uid, st.Gid, o[0], o[1])
		}
	}
	command := func(argv []string, env []string) *exec.Cmd {
		cmd := exec.Command(filepath.Join(root, argv[0]), argv[1:]...)
		cmd.Env = env
		cmd.Dir = root
		if os.Getuid() == 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(spec.uid), Gid: uint32(spec.gid)}}
		} else {
			t.Logf("not root: running as uid %d, not the image's %s", os.Getuid(), c.User)
		}
		return cmd
	}
	if out, err := command([]string{c.Entrypoint[0], "version"}, nil).Output(); err != nil || strings.TrimSpace(string(out)) != "trove docker-test" {
		t.Errorf("trove version: %q, %v; want \"trove docker-test\"", out, err)
	}

	// The server binds 127.0.0.1:0 here; the healthcheck then gets the
	// image's TROVE_LISTEN with that port (":PORT", no host).
	srv := command(append(slices.Clone(c.Entrypoint), c.Cmd...), containerEnv(c, root, "127.0.0.1:0"))
	stderr, err := srv.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	addrCh := make(chan string, 1)
	logs := &testutil.SyncBuffer{}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.Write(append(sc.Bytes(), '\n'))
			var rec struct{ Msg string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil {
				if a, ok := strings.CutPrefix(rec.Msg, "listening on http://"); ok {
					addrCh <- a
				}
			}
		}
		exited <- srv.Wait()
	}()
	t.Cleanup(func() {
		srv.Process.Kill()
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
	})
	var addr string
	select {
	case addr = <-addrCh:
	case err := <-exited:
		t.Fatalf("the server exited before serving: %v\n%s", err, logs)
	case <-time.After(30 * time.Second):
		t.Fatalf("the server did not serve within 30s\n%s", logs)
	}
	_, port, _ := net.SplitHostPort(addr)
	if os.Getuid() == 0 {
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", srv.Process.Pid))
		for line := range strings.Lines(string(status)) {
			if f := strings.Fields(line); len(f) > 1 && f[0] == "Uid:" && f[1] != strconv.Itoa(spec.uid) {
				t.Errorf("the server runs as uid %s; want %d", f[1], spec.uid)
			}
		}
		// It wrote its generated admin token into the volume.
		fi, err := os.Stat(filepath.Join(root, "data", "admin.token"))
		if err != nil {
			t.Errorf("no admin.token in the data volume: %v", err)
		} else if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != spec.uid {
			t.Errorf("admin.token is owned by uid %d; want %d", st.Uid, spec.uid)
		}
	}
	health := func() (int, string) {
		cmd := command(c.Healthcheck.Test[1:], containerEnv(c, root, ":"+port))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, out.String()
	}
	if code, out := health(); code != 0 || !strings.Contains(out, "healthy: http://127.0.0.1:"+port+"/healthz") {
		t.Errorf("healthcheck: exit %d, %q; want 0", code, out)
	}

	srv.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the server exited with %v after SIGTERM; want 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not exit within 15s of SIGTERM")
	}
	if code, out := health(); code != 1 || !strings.Contains(out, "unhealthy") {
		t.Errorf("healthcheck with the server gone: exit %d, %q; want 1 saying why", code, out)
	}
}

func TestFullyQualified(t *testing.T) {
	for _, tc := range []struct {
		ref  string
		want bool
	}{
		{"docker.io/library/golang:1.26", true},
		{"gcr.io/distroless/static-debian12:nonroot", true},
		{"localhost/trove:dev", true},
		{"registry.local:5000/golang:1.26", true},
		{"scratch", true},
		{"golang:1.26", false},
		{"library/golang:1.26", false},
	} {
		if got := fullyQualified(tc.ref); got != tc.want {
			t.Errorf("fullyQualified(%q) = %v; want %v", tc.ref, got, tc.want)
		}
	}
}
