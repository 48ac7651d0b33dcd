package rekey

// SetAfterBatch lets a test act between batches (a simulated crash).
func SetAfterBatch(s *Service, f func(group string, n int)) { s.afterBatch = f }
