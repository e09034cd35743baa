package admin

import "trove/apierr"

// The admin API refuses requests with *apierr.Error values naming the field
// at fault: apierr.Invalid (400), apierr.NotFound (404, no token has the id
// asked for), apierr.Conflict (409, an app name already taken, a
// config-declared token to revoke) or apierr.TooLarge (413, a body over
// maxBodyBytes).

func invalid(field, msg string) *apierr.Error { return apierr.New(apierr.Invalid, field, msg) }
