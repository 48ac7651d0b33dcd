package retention

// ValidateHold exposes hold validation to the fuzz target.
func ValidateHold(s *Service, in HoldInput) error {
	_, _, err := s.validateHold(in, s.Clock.Now())
	return err
}
