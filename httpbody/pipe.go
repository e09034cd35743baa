package httpbody

import "io"

// Pipe is the io.Reader side of a response body that streams itself with
// WriteTo (exports, the event stream, backups). fasthttp calls a body's
// WriteTo when it has one, and Read only where something reads the body
// instead; then WriteTo runs into a pipe, on a goroutine of its own. The
// zero Pipe is ready to use; one Pipe serves one body.
type Pipe struct{ pr *io.PipeReader }

// Read reads from the pipe, starting w.WriteTo on its other end the first
// time it is called; after, when not nil, runs once WriteTo has returned.
func (p *Pipe) Read(b []byte, w io.WriterTo, after func()) (int, error) {
	if p.pr == nil {
		pr, pw := io.Pipe()
		p.pr = pr
		go func() {
			_, err := w.WriteTo(pw)
			pw.CloseWithError(err)
			if after != nil {
				after()
			}
		}()
	}
	return p.pr.Read(b)
}

// Close closes the pipe's reading end, so that a WriteTo writing into it
// fails on its next write and cleans up, and reports whether Read had
// started one (if not, the body's owner cleans up itself).
func (p *Pipe) Close() bool {
	if p.pr == nil {
		return false
	}
	p.pr.Close()
	return true
}
