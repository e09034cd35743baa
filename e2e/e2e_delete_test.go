package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-json"

	"trove/internal/testutil"
)

// userEvent is an event of user u with a marker that names them.
func userEvent(u string, i int) string {
	return fmt.Sprintf(`{"type":"event","event":"played","userId":%q,"eventTime":"2026-11-20T10:00:%02dZ","attributes":{"marker":"%s-%d"},"appKey":%q}`, u, i%60, u, i, demoApp)
}

func deleteUser(t *testing.T, addr, query string, header ...string) response {
	t.Helper()
	return request(t, "DELETE", "http://"+addr+"/v1/users/profile?"+query, nil, header...)
}

// TestE2EDeleteUser is the right to be forgotten: the profile goes at once,
// the user's events leave every export at once (and stay out after a
// restart), and other users are untouched. Events sent later are a new
// start, stored and exported; with suppress=1 they are refused, named in
// the answer, and kept nowhere.
func TestE2EDeleteUser(t *testing.T) {
	srv := startServer(t, testConfig)
	addr, dir, stop := srv.addr, srv.dataDir, srv.stop
	var batch []string
	for i := range 20 {
		batch = append(batch, userEvent("alice", i), userEvent("bob", i))
	}
	decodeAnswer(t, postEvents(t, addr, "["+strings.Join(batch, ",")+"]"), http.StatusAccepted)
	r := postProfiles(t, addr, `{"appKey":"`+demoApp+`","user_profiles":[{"userId":"alice","email_id":"alice@example.com",
		"user_alias":[{"alias_label":"crm","alias_id":"A-1"}]},{"userId":"bob","city":"Oslo"}]}`)
	if r.status != http.StatusAccepted {
		t.Fatalf("POST /users/profile: %d %s", r.status, r.body)
	}

	// Credentials and parameters are checked before anything changes.
	admin := "Authorization: Bearer " + adminSecret
	for _, tt := range []struct {
		name, query, header string
		status              int
		field               string
	}{
		{"no token", "appKey=" + demoApp + "&userId=alice", "", http.StatusUnauthorized, ""},
		{"export token", "appKey=" + demoApp + "&userId=alice", "Authorization: Bearer " + backendSecret, http.StatusForbidden, ""},
		{"no userId", "appKey=" + demoApp, admin, http.StatusBadRequest, "userId"},
		{"no appKey", "userId=alice", admin, http.StatusBadRequest, "appKey"},
		{"unknown parameter", "appKey=" + demoApp + "&userId=alice&cascade=1", admin, http.StatusBadRequest, "cascade"},
		{"userId twice", "appKey=" + demoApp + "&userId=alice&userId=bob", admin, http.StatusBadRequest, "userId"},
		{"bad suppress", "appKey=" + demoApp + "&userId=alice&suppress=maybe", admin, http.StatusBadRequest, "suppress"},
	} {
		var h []string
		if tt.header != "" {
			h = append(h, tt.header)
		}
		r := deleteUser(t, addr, tt.query, h...)
		var e struct{ Field string }
		json.Unmarshal(r.body, &e)
		if r.status != tt.status || e.Field != tt.field {
			t.Errorf("%s: %d %s; want %d naming %q", tt.name, r.status, r.body, tt.status, tt.field)
		}
	}
	if st, _ := getProfile(t, addr, "userId=alice"); st != http.StatusOK {
		t.Fatalf("refused deletions removed alice's profile: GET %d", st)
	}

	r = deleteUser(t, addr, "appKey="+demoApp+"&userId=alice", admin)
	if r.status != http.StatusOK {
		t.Fatalf("DELETE: %d %s; want 200", r.status, r.body)
	}
	var receipt struct {
		AppKey         string `json:"appKey"`
		UserID         string `json:"userId"`
		PyzeID         string `json:"pyze_id"`
		ProfileRemoved bool   `json:"profile_removed"`
		Aliases        []struct {
			Label string `json:"alias_label"`
			ID    string `json:"alias_id"`
		} `json:"aliases_removed"`
		Events string `json:"events"`
	}
	if err := json.Unmarshal(r.body, &receipt); err != nil {
		t.Fatal(err)
	}
	if receipt.UserID != "alice" || !receipt.ProfileRemoved || len(receipt.PyzeID) != 36 ||
		len(receipt.Aliases) != 1 || receipt.Aliases[0].ID != "A-1" || receipt.Events == "" {
		t.Errorf("receipt %s: want alice's profile, pyze_id and alias removed, and what happened to the events", r.body)
	}

	// Sent after the deletion: a new start, stored and exported.
	decodeAnswer(t, postEvents(t, addr, userEvent("alice", 99)), http.StatusAccepted)

	// carol is deleted with suppress=1: her later events are refused.
	decodeAnswer(t, postEvents(t, addr, userEvent("carol", 1)), http.StatusAccepted)
	r = deleteUser(t, addr, "appKey="+demoApp+"&userId=carol&suppress=1", admin)
	if r.status != http.StatusOK || !strings.Contains(string(r.body), `"suppress":true`) {
		t.Fatalf("DELETE with suppress=1: %d %s; want 200 saying suppress", r.status, r.body)
	}
	bobs, refused := 20, 0
	refuseCarol := func(when string) {
		t.Helper()
		bobs++
		a := decodeAnswer(t, postEvents(t, addr, strings.Replace(userEvent("carol", 2), `"appKey"`, `"messageId":"carol-2","appKey"`, 1)), http.StatusBadRequest)
		refused += a.Rejected
		if a.Field != "userId" || !strings.Contains(a.Message, "suppress=1") || a.Rejected != 1 {
			t.Errorf("%s: carol's event answered %+v; want a 400 naming userId and suppress=1", when, a)
		}
		a = decodeAnswer(t, postEvents(t, addr, "["+userEvent("bob", 50)+","+userEvent("carol", 3)+"]"), http.StatusAccepted)
		refused += a.Rejected
		if a.Accepted != 1 || a.Rejected != 1 || len(a.Errors) != 1 || *a.Errors[0].Index != 1 || a.Errors[0].Field != "userId" {
			t.Errorf("%s: bob and carol answered %+v; want bob accepted, carol rejected at index 1", when, a)
		}
	}
	refuseCarol("after the deletion")

	check := func(when string) {
		t.Helper()
		for _, q := range []string{"userId=alice", "pyze_id=" + receipt.PyzeID, "alias_label=crm&alias_id=A-1"} {
			if st, _ := getProfile(t, addr, q); st != http.StatusNotFound {
				t.Errorf("%s: GET profile %s: %d; want 404", when, q, st)
			}
		}
		if st, p := getProfile(t, addr, "userId=bob"); st != http.StatusOK || p["city"] != "Oslo" {
			t.Errorf("%s: bob's profile: %d %v", when, st, p)
		}
		for _, query := range []string{"", "from=2026-11-20&to=2026-11-21", "userId=alice"} {
			lines := exportEvents(t, addr, query).lines
			alice, bob, carol := 0, 0, 0
			for _, l := range lines {
				switch {
				case strings.Contains(l, `"alice`):
					if !strings.Contains(l, `"marker":"alice-99"`) {
						t.Errorf("%s: export %q has alice's event from before the deletion: %s", when, query, l)
					}
					alice++
				case strings.Contains(l, `"userId":"bob"`):
					bob++
				case strings.Contains(l, `carol`):
					carol++
				}
			}
			wantBob := bobs // with those sent beside carol's
			if query == "userId=alice" {
				wantBob = 0
			}
			if alice != 1 || bob != wantBob || carol != 0 {
				t.Errorf("%s: export %q has %d lines of alice, %d of bob, %d of carol; want 1 (sent after the deletion), %d and 0", when, query, alice, bob, carol, wantBob)
			}
		}
		rej := exportFrom(t, addr, "/v1/export/rejected", demoApp, "")
		for _, l := range rej.lines {
			if strings.Contains(l, "carol") {
				t.Errorf("%s: the quarantine keeps carol's refused event: %s", when, l)
			}
		}
		if m := scrape(t, addr)[`trove_events_suppressed_total{app="`+demoApp+`"}`]; m < 2 {
			t.Errorf("%s: trove_events_suppressed_total = %v; want at least 2", when, m)
		}
	}
	check("after the deletion")
	stop()
	addr = startServer(t, testConfig, inDir(dir)).addr
	refuseCarol("after a restart")
	check("after a restart")
	if !t.Failed() {
		t.Logf("DELETEUSER: deleted_events_exported=0 new_start_exported=1 suppressed_refused=%d suppressed_quarantined=0 restarts=1", refused)
	}
}

// TestE2EDeleteUserBytesGone proves that a deleted user's bytes leave the
// data directory. Fresh blocks are S2-compressed, which stores an
// incompressible string as it is, so a random marker in the user's events
// and profile can be found in the files until the purger has rewritten
// the blocks and compacted them away (and the WAL that logged them is
// deleted, not recycled).
func TestE2EDeleteUserBytesGone(t *testing.T) {
	// No merging: merged blocks are zstd-compressed, in which the markers
	// could not be seen before the deletion either.
	srv := startServer(t, testConfig+"\n[storage]\nmerge_min_age = \"1h\"\n")
	addr, dir := srv.addr, srv.dataDir
	alice, bob := "alice-"+randomHex(t), "bob-"+randomHex(t)
	for i := range 3 {
		decodeAnswer(t, postEvents(t, addr, fmt.Sprintf(`{"type":"event","event":"e","userId":"alice","eventTime":"2026-11-20T10:00:0%dZ","attributes":{"marker":%q},"appKey":%q}`, i, alice, demoApp)), http.StatusAccepted)
		decodeAnswer(t, postEvents(t, addr, fmt.Sprintf(`{"type":"event","event":"e","userId":"bob","eventTime":"2026-11-20T10:00:0%dZ","attributes":{"marker":%q},"appKey":%q}`, i, bob, demoApp)), http.StatusAccepted)
	}
	// One request with both users: its blocks are rewritten with bob's
	// events alone.
	decodeAnswer(t, postEvents(t, addr, "["+userEvent("alice", 7)+","+userEvent("bob", 8)+"]"), http.StatusAccepted)
	if r := postProfiles(t, addr, `{"appKey":"`+demoApp+`","user_profiles":[{"userId":"alice","secret_note":"`+alice+`"}]}`); r.status != http.StatusAccepted {
		t.Fatalf("POST /users/profile: %d %s", r.status, r.body)
	}
	if files := filesContaining(t, dir, alice); len(files) == 0 {
		t.Fatalf("the marker %s is in no file of the data directory: the test cannot see what it checks", alice)
	}
	if r := deleteUser(t, addr, "appKey="+demoApp+"&userId=alice", "Authorization: Bearer "+adminSecret); r.status != http.StatusOK {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	testutil.WaitFor(t, 30*time.Second, func() error {
		if files := filesContaining(t, dir, alice); len(files) > 0 {
			return fmt.Errorf("the deleted user's marker is still in %v", files)
		}
		return nil
	})
	m := scrape(t, addr)
	if u, e := m["trove_deleted_users_purged_total"], m["trove_deleted_user_events_purged_total"]; u != 1 || e != 4 {
		t.Errorf("purge metrics: %v users, %v events; want 1 and 4", u, e)
	}
	// Bob's events are all still there.
	bobs := 0
	for _, l := range exportEvents(t, addr, "").lines {
		if strings.Contains(l, `"userId":"bob"`) {
			bobs++
		}
		if strings.Contains(l, `"userId":"alice"`) {
			t.Errorf("exported after the deletion: %s", l)
		}
	}
	if bobs != 4 {
		t.Errorf("%d of bob's events exported; want 4", bobs)
	}
}

func randomHex(t *testing.T) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// filesContaining returns the files under dir that contain s.
func filesContaining(t *testing.T, dir, s string) []string {
	t.Helper()
	var found []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // deleted while we walked
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			found = append(found, filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
