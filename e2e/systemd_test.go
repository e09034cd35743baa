package e2e

// The systemd units of deploy/systemd: what the README's on-prem install
// promises of them, checked in the files; systemd's own verifier on them;
// and the backup unit's commands run for real against a server.

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"trove/cli"
	"trove/config"
	"trove/server"
)

const unitDir = moduleRoot + "/deploy/systemd"

// unitFile is a parsed unit: section → key → values, in order (a key may
// repeat, as Environment= does).
type unitFile map[string]map[string][]string

func readUnit(t *testing.T, name string) unitFile {
	t.Helper()
	f, err := os.Open(filepath.Join(unitDir, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[':
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: line %q is not key=value in a section", name, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// one returns the only value of a key, failing when it has not exactly one.
func (u unitFile) one(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) != 1 {
		t.Errorf("[%s] %s = %q; want it set once", section, key, v)
		return ""
	}
	return v[0]
}

// unitSeconds parses a systemd time span such as "30s", "2min" or "6h".
func unitSeconds(t *testing.T, s string) time.Duration {
	t.Helper()
	s = strings.Replace(s, "min", "m", 1)
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Errorf("time span %q: %v", s, err)
	}
	return d
}

func TestSystemdUnits(t *testing.T) {
	svc := readUnit(t, "trove.service")
	s := "Service"
	for key, want := range map[string]string{
		"User": "trove", "Group": "trove", "StateDirectory": "trove", "Restart": "on-failure",
		"KillSignal": "SIGTERM", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
		"ExecStart": "/usr/local/bin/trove serve -config /etc/trove/trove.toml",
	} {
		if got := svc.one(t, s, key); got != want {
			t.Errorf("trove.service: %s=%s; want %s", key, got, want)
		}
	}
	// The shutdown (drain, then close the store) ends within 10 s; systemd
	// must wait longer than that before SIGKILL.
	if d := unitSeconds(t, svc.one(t, s, "TimeoutStopSec")); d < 20*time.Second {
		t.Errorf("trove.service: TimeoutStopSec=%v; want at least twice the 10 s shutdown", d)
	}
	// A descriptor per connection, and the store's files.
	if n, err := strconv.Atoi(svc.one(t, s, "LimitNOFILE")); err != nil || n < config.Default().HTTP.Concurrency+1024 {
		t.Errorf("trove.service: LimitNOFILE=%d (%v); want at least http.concurrency (%d) + 1024", n, err, config.Default().HTTP.Concurrency)
	}
	// The Environment= lines are configuration that trove takes, with the
	// data directory in the StateDirectory.
	var environ []string
	for _, e := range svc[s]["Environment"] {
		environ = append(environ, e)
	}
	cfg := config.Default()
	if err := cfg.ApplyEnv(environ); err != nil {
		t.Errorf("trove.service: Environment= is not a valid configuration: %v", err)
	}
	if cfg.DataDir != "/var/lib/trove" {
		t.Errorf("trove.service: the data directory is %q; want /var/lib/trove, the StateDirectory", cfg.DataDir)
	}
	if got := svc.one(t, "Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("trove.service: WantedBy=%s; want multi-user.target", got)
	}
	// ExecStart's flags are serve's: parsed up to the -h after them, they
	// exit 0, not 2.
	args := strings.Fields(svc.one(t, s, "ExecStart"))
	var usage bytes.Buffer
	if code := server.Serve(context.Background(), append(args[2:], "-h"), &usage, &usage, server.Options{}); code != 0 {
		t.Errorf("trove.service: ExecStart flags %q: exit %d:\n%s", args[2:], code, usage.String())
	}

	bk := readUnit(t, "trove-backup.service")
	for key, want := range map[string]string{"Type": "oneshot", "User": "trove"} {
		if got := bk.one(t, s, key); got != want {
			t.Errorf("trove-backup.service: %s=%s; want %s", key, got, want)
		}
	}
	for key, want := range map[string]string{"Requisite": "trove.service", "After": "trove.service"} {
		if got := bk.one(t, "Unit", key); got != want {
			t.Errorf("trove-backup.service: %s=%s; want %s", key, got, want)
		}
	}
	// The flags the backup passes are trove backup's.
	var help bytes.Buffer
	cli.Backup(context.Background(), []string{"-h"}, &help, &help)
	script := bk.one(t, s, "ExecStart")
	if !strings.Contains(script, "/usr/local/bin/trove backup ") {
		t.Errorf("trove-backup.service: ExecStart %q does not run trove backup", script)
	}
	// Its flags: the words after "trove backup" that start with "-", outside
	// the double-quoted values.
	cmdline := regexp.MustCompile(`"[^"]*"`).ReplaceAllString(script[strings.Index(script, "trove backup"):], `""`)
	flags := regexp.MustCompile(` (-[a-z]+) `).FindAllStringSubmatch(cmdline, -1)
	if len(flags) == 0 {
		t.Errorf("trove-backup.service: no flags found in %q", cmdline)
	}
	for _, m := range flags {
		if !strings.Contains(help.String(), "\n  "+m[1]+" ") {
			t.Errorf("trove-backup.service runs trove backup %s, which trove backup -h does not list:\n%s", m[1], help.String())
		}
	}

	tm := readUnit(t, "trove-backup.timer")
	if tm.one(t, "Timer", "OnCalendar") == "" || tm.one(t, "Timer", "Persistent") != "true" {
		t.Errorf("trove-backup.timer: want OnCalendar= and Persistent=true; got %v", tm["Timer"])
	}
	if got := tm.one(t, "Install", "WantedBy"); got != "timers.target" {
		t.Errorf("trove-backup.timer: WantedBy=%s; want timers.target", got)
	}

	b, err := os.ReadFile(filepath.Join(unitDir, "trove.sysusers"))
	if err != nil || !regexp.MustCompile(`(?m)^u trove - .* /var/lib/trove `).Match(b) {
		t.Errorf("trove.sysusers: %v; want a line declaring the trove user with home /var/lib/trove:\n%s", err, b)
	}
}

// TestSystemdVerify runs systemd-analyze verify on the units, with the
// binary's path pointed at a file that exists. Without systemd-analyze it
// fails saying how to install it, unless TROVE_TEST_SYSTEMD is "skip".
func TestSystemdVerify(t *testing.T) {
	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		const how = "systemd-analyze is not installed: on Debian or Ubuntu, apt-get install -y systemd (.ci/run installs it)"
		if os.Getenv("TROVE_TEST_SYSTEMD") == "skip" {
			t.Skip(how + " (TROVE_TEST_SYSTEMD=skip)")
		}
		t.Fatal(how + "; or set TROVE_TEST_SYSTEMD=skip to skip this test")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var units []string
	for _, name := range []string{"trove.service", "trove-backup.service", "trove-backup.timer"} {
		b, err := os.ReadFile(filepath.Join(unitDir, name))
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.ReplaceAll(b, []byte("/usr/local/bin/trove"), []byte(self))
		os.WriteFile(filepath.Join(dir, name), b, 0o644)
		units = append(units, filepath.Join(dir, name))
	}
	out, err := exec.Command(tool, append([]string{"verify"}, units...)...).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	// The sysusers file creates the user, in a scratch root.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	abs, _ := filepath.Abs(filepath.Join(unitDir, "trove.sysusers"))
	if out, err := exec.Command(filepath.Join(filepath.Dir(tool), "systemd-sysusers"), "--root="+root, abs).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if !regexp.MustCompile(`(?m)^trove:x:\d+:\d+:[^:]*:/var/lib/trove:/usr/sbin/nologin$`).Match(passwd) {
		t.Errorf("systemd-sysusers made /etc/passwd:\n%s\nwant a trove line with home /var/lib/trove and no shell", passwd)
	}
}

// TestSystemdBackupCommands runs the backup unit's ExecStart and
// ExecStartPost, as systemd would after unescaping them, against a server:
// with the admin token from the environment file and, when that has none,
// from the data directory; then the pruning of old backups.
func TestSystemdBackupCommands(t *testing.T) {
	bin := troveBinary(t)
	addr := startServer(t, testConfig).addr
	bk := readUnit(t, "trove-backup.service")
	dataDir := t.TempDir()
	tokenFile := filepath.Join(dataDir, "admin.token")
	os.WriteFile(tokenFile, []byte(adminSecret+"\n"), 0o600)
	shell := func(key string) string {
		v := bk.one(t, "Service", key)
		inner, ok := strings.CutPrefix(v, "/bin/sh -c '")
		if !ok || !strings.HasSuffix(inner, "'") {
			t.Fatalf("%s=%s; want /bin/sh -c '…'", key, v)
		}
		inner = strings.TrimSuffix(inner, "'")
		// systemd's escapes: $$ is $, %% is %.
		inner = strings.NewReplacer("$$", "$", "%%", "%").Replace(inner)
		inner = strings.ReplaceAll(inner, "/usr/local/bin/trove", bin)
		return strings.ReplaceAll(inner, "/var/lib/trove/admin.token", tokenFile)
	}
	backups := t.TempDir()
	env := map[string]string{}
	for _, e := range bk["Service"]["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	if env["BACKUP_SERVER"] != "http://127.0.0.1:8080" || env["BACKUP_DIR"] != "/var/lib/trove-backups" {
		t.Errorf("trove-backup.service: Environment %v; want BACKUP_SERVER=http://127.0.0.1:8080, BACKUP_DIR=/var/lib/trove-backups (its StateDirectory)", env)
	}
	sh := func(script string, extra ...string) {
		t.Helper()
		cmd := exec.Command("/bin/sh", "-c", script)
		cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "BACKUP_SERVER=http://" + addr, "BACKUP_DIR=" + backups,
			"BACKUP_KEEP_DAYS=" + env["BACKUP_KEEP_DAYS"]}, extra...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", script, err, out)
		}
	}
	list := func() []string {
		m, _ := filepath.Glob(filepath.Join(backups, "trove-*.tar.zst"))
		return m
	}
	sh(shell("ExecStart"), "TROVE_ADMIN_TOKEN="+adminSecret)
	if got := list(); len(got) != 1 || !regexp.MustCompile(`/trove-\d{8}T\d{6}Z\.tar\.zst$`).MatchString(got[0]) {
		t.Fatalf("after the backup with the token from the environment: %q; want one trove-YYYYMMDDTHHMMSSZ.tar.zst", got)
	}
	// Names go by the second: move the first aside, so that a second run
	// within the same second does not meet it (trove backup refuses an
	// existing file).
	first := filepath.Join(backups, "trove-20000101T000000Z.tar.zst")
	if err := os.Rename(list()[0], first); err != nil {
		t.Fatal(err)
	}
	// The token from the data directory.
	sh(shell("ExecStart"))
	if got := list(); len(got) != 2 {
		t.Fatalf("after the backup with the token from admin.token: %q; want two backups", got)
	}
	var out bytes.Buffer
	if code := cli.Restore(context.Background(), []string{first, "-data", filepath.Join(t.TempDir(), "restored")}, &out, &out); code != 0 {
		t.Errorf("trove restore of the unit's backup: exit %d\n%s", code, out.String())
	}
	// Pruning: a backup older than BACKUP_KEEP_DAYS goes, the others stay.
	old := filepath.Join(backups, "trove-20200101T000000Z.tar.zst")
	os.WriteFile(old, []byte("old"), 0o600)
	keep, _ := strconv.Atoi(env["BACKUP_KEEP_DAYS"])
	past := time.Now().AddDate(0, 0, -keep-2)
	os.Chtimes(old, past, past)
	sh(shell("ExecStartPost"))
	if got := list(); len(got) != 2 || strings.Contains(strings.Join(got, " "), "20200101") {
		t.Errorf("after pruning: %q; want the two recent backups only", got)
	}
}
