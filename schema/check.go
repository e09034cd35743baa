package schema

import (
	"strconv"

	"trove/obs"
)

// Verdict is what a contract check decided about one event: Off to store
// it, Warn to store it with a warning, Reject to quarantine it; Field and
// Message name the problem for the other two.
type Verdict struct {
	Action  Mode
	Field   string
	Message string
}

// Check applies pol (appKey's policy) to the event named name whose stored
// form is doc, and counts the outcome in the metrics when count is set.
// doc and name are only read.
func (r *Registry) Check(appKey string, pol Policy, name, doc []byte, count bool) Verdict {
	c := r.Lookup(appKey, name)
	if c == nil {
		if pol.Unknown == Off {
			return Verdict{}
		}
		if count {
			u := obs.SchemaUnknown(appKey)
			if pol.Unknown == Warn {
				u.Warned.Inc()
			} else {
				u.Rejected.Inc()
			}
		}
		return Verdict{Action: pol.Unknown, Field: "/event",
			Message: "no schema for event " + strconv.Quote(string(name)) + " (schema_unknown = " + UnknownName(pol.Unknown) + ")"}
	}
	if pol.Mode == Off {
		return Verdict{}
	}
	if count {
		c.metrics.Checked.Inc()
	}
	v := validate(c.compiled, doc)
	if v == nil {
		return Verdict{}
	}
	if count {
		if pol.Mode == Warn {
			c.metrics.Warned.Inc()
		} else {
			c.metrics.Rejected.Inc()
		}
	}
	return Verdict{Action: pol.Mode, Field: v.Field, Message: c.Sentence(v)}
}
