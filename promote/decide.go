package promote

// Move is one model to carry to the next environment: its pin there today
// (Before) and the pin it passed with (After).
type Move struct {
	Before, After Pin
}

// Decide compares the Models of a passed environment with those of its
// target, both rendered at the same commit, and returns the models whose
// version or artifact differ, in the order of from. Models the target does
// not have are returned in missing: a promotion never invents a model in an
// environment that does not declare it.
func Decide(from, to []Pin) (moves []Move, missing []string) {
	target := make(map[string]Pin, len(to))
	for _, p := range to {
		target[p.Model] = p
	}
	for _, p := range from {
		t, ok := target[p.Model]
		switch {
		case !ok:
			missing = append(missing, p.Model)
		case t != p:
			moves = append(moves, Move{Before: t, After: p})
		}
	}
	return moves, missing
}
