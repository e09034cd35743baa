package profile

import "trove/apierr"

// The profile API refuses requests with *apierr.Error values: apierr.Invalid
// (400, code word "invalid_profile"), apierr.Conflict (409, an identity of
// the request belongs to another profile), apierr.NotFound (404),
// apierr.TooLarge (413) or apierr.Unsupported (415).

// invalidCode is the code word of the profile API's 400 answers.
const invalidCode = "invalid_profile"

// refuse returns an error of kind naming the profile at fault (its index
// in user_profiles, or -1 for the request as a whole) and the field. A
// profile's index goes in the body as "index" and one "errors" entry.
func refuse(kind error, index int, field, msg string) *apierr.Error {
	e := &apierr.Error{Kind: kind, Field: field, Message: msg}
	if kind == apierr.Invalid {
		e.Code = invalidCode
	}
	if index >= 0 {
		e.Details = map[string]any{
			"index":  index,
			"errors": []map[string]any{{"index": index, "field": field, "message": msg}},
		}
	}
	return e
}

func invalid(index int, field, msg string) *apierr.Error {
	return refuse(apierr.Invalid, index, field, msg)
}

// bodyError gives an error of httpbody the profile API's code word.
func bodyError(err error) error {
	if e, ok := err.(*apierr.Error); ok && e.Kind == apierr.Invalid && e.Code == "" {
		c := *e
		c.Code = invalidCode
		return &c
	}
	return err
}
