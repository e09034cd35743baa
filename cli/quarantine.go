package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/goccy/go-json"
)

const quarantineUsage = `Usage: trove quarantine list --app KEY [--reason PREFIX] [--since SEQ] [flags]
       trove quarantine replay --app KEY [--reason PREFIX] [--since SEQ] [--until SEQ] [flags]

list shows the app's quarantine: the events refused, each with its sequence
and reason (GET /v1/export/rejected; --json prints its NDJSON lines).
replay re-checks the selected entries against today's rules and contracts
and stores those that now pass, exactly once (POST /admin/quarantine/replay).
--reason selects the entries whose error code or message starts with PREFIX
(e.g. schema_violation). Needs the admin token.

Flags:
`

// Quarantine runs `trove quarantine list|replay` and returns the exit
// status: 0 done, 1 failed (the server's message is printed), 2 bad usage.
func Quarantine(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	sub, args, ok, code := splitSubcommand("trove quarantine", quarantineUsage, []string{"list", "replay"}, nil, args, stdout, stderr)
	if !ok {
		return code
	}
	cmd := newAdminCommand("trove quarantine "+sub, quarantineUsage, stderr)
	app := cmd.fs.String("app", "", "the app's `KEY` (appKey)")
	reason := cmd.fs.String("reason", "", "only entries whose error code or message starts with `PREFIX`")
	since := cmd.fs.Uint64("since", 0, "only entries after sequence `SEQ`")
	var until *uint64
	if sub == "replay" {
		until = cmd.fs.Uint64("until", 0, "only entries up to sequence `SEQ` (0: all)")
	}
	if _, ok, code := cmd.parse(args, 0, "", stderr); !ok {
		return code
	}
	if *app == "" {
		fmt.Fprintf(stderr, "%s: missing --app KEY\n", cmd.name)
		return 2
	}
	q := url.Values{"appKey": {*app}}
	if *reason != "" {
		q.Set("reason", *reason)
	}
	if *since > 0 {
		q.Set("since", strconv.FormatUint(*since, 10))
	}
	if sub == "replay" {
		if *until > 0 {
			q.Set("until", strconv.FormatUint(*until, 10))
		}
		var res struct {
			Replayed      int `json:"replayed"`
			StillRejected int `json:"stillRejected"`
			Duplicates    int `json:"duplicates"`
		}
		raw, err := cmd.c.do(ctx, "POST", "/admin/quarantine/replay?"+q.Encode(), nil, &res)
		if err != nil {
			return cmd.fail(stderr, err)
		}
		if cmd.c.json {
			stdout.Write(raw)
			return 0
		}
		fmt.Fprintf(stdout, "replayed %d, still rejected %d, already stored %d\n", res.Replayed, res.StillRejected, res.Duplicates)
		return 0
	}
	return listQuarantine(ctx, cmd, q, stdout, stderr)
}

// listQuarantine prints the quarantine entries that q selects: the
// server's NDJSON with --json, else a table.
func listQuarantine(ctx context.Context, cmd *adminCommand, q url.Values, stdout, stderr io.Writer) int {
	q.Set("seq", "1")
	resp, err := cmd.c.send(ctx, "GET", "/v1/export/rejected?"+q.Encode(), "", nil)
	if err != nil {
		return cmd.fail(stderr, err)
	}
	defer resp.Body.Close()
	if cmd.c.json {
		if _, err := io.Copy(stdout, resp.Body); err != nil {
			return cmd.fail(stderr, fmt.Errorf("the listing was cut short: %v", err))
		}
		return 0
	}
	var rows [][]string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e struct {
			Seq        uint64          `json:"seq"`
			ReceivedAt string          `json:"receivedAt"`
			Error      string          `json:"error"`
			Field      string          `json:"field"`
			Message    string          `json:"message"`
			Event      json.RawMessage `json:"event"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return cmd.fail(stderr, fmt.Errorf("the server sent a line this client cannot read (%v): is --server a trove server of the same version?", err))
		}
		var ev struct{ Event any }
		json.Unmarshal(e.Event, &ev) // an event without a usable name shows none
		name, _ := ev.Event.(string)
		rows = append(rows, []string{strconv.FormatUint(e.Seq, 10), e.ReceivedAt, name, e.Error, e.Field, e.Message})
	}
	if err := sc.Err(); err != nil {
		return cmd.fail(stderr, fmt.Errorf("the listing was cut short: %v", err))
	}
	table(stdout, []string{"SEQ", "RECEIVED", "EVENT", "ERROR", "FIELD", "MESSAGE"}, rows)
	fmt.Fprintf(stderr, "%d quarantined events\n", len(rows))
	return 0
}
