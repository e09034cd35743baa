package web

// ungatedWrites are the routes with a writing method that stay open while
// writes are refused. A backup stores nothing, and is how an operator gets
// the data off a disk that is filling up. Revoking a token writes a few
// bytes, well within the margin that storage.min_free_disk keeps, and must
// not wait for disk space: a leaked token stays refused.
var ungatedWrites = map[string]bool{
	"POST /admin/backup":    true,
	"DELETE /admin/tokens/": true,
}

// isWrite reports whether r may change what is stored: every route with a
// method other than GET and HEAD, except ungatedWrites.
func isWrite(r *Route) bool {
	switch r.Method {
	case "GET", "HEAD":
		return false
	}
	return !ungatedWrites[r.Method+" "+r.Path]
}

// writeGateErr returns why writes are refused now (Config.WriteGate), or
// nil.
func (s *Server) writeGateErr() error {
	if s.cfg.WriteGate == nil {
		return nil
	}
	return s.cfg.WriteGate()
}
