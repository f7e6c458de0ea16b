// Package apply makes one cluster match a rendered set of objects with
// server-side apply, keeps an inventory of what it owns in that cluster, prunes
// what Git no longer declares, waits for health and corrects drift.
//
// It knows nothing of Git or GitHub.
package apply
