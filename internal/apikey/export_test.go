package apikey

// Lookups is how many database lookups Authenticate has made.
func (s *Store) Lookups() int64 { return s.lookups.Load() }
