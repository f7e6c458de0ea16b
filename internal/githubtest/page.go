package githubtest

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// GitHub's page sizes: per_page defaults to 30 and is capped at 100.
const (
	defaultPerPage = 30
	maxPerPage     = 100
)

// paginate returns the page of items the request asks for (per_page, page)
// and sets the Link header GitHub sends with it: prev, next, last and first,
// in that order, each where it applies, and no header when everything fits
// on one page. A page past the end is empty. The result is never nil, so it
// encodes as [].
func paginate[T any](w http.ResponseWriter, r *http.Request, items []T) []T {
	q := r.URL.Query()
	perPage := atoiOr(q.Get("per_page"), defaultPerPage)
	if perPage < 1 {
		perPage = defaultPerPage
	}
	perPage = min(perPage, maxPerPage)
	page := max(atoiOr(q.Get("page"), 1), 1)
	last := max((len(items)+perPage-1)/perPage, 1)

	if len(items) > perPage {
		link := func(n int, rel string) string {
			q.Set("page", strconv.Itoa(n))
			u := apiBase(r) + strings.TrimPrefix(r.URL.Path, "/") + "?" + q.Encode()
			return fmt.Sprintf("<%s>; rel=%q", u, rel)
		}
		var links []string
		if page > 1 {
			links = append(links, link(min(page-1, last), "prev"))
		}
		if page < last {
			links = append(links, link(page+1, "next"), link(last, "last"))
		}
		if page > 1 {
			links = append(links, link(1, "first"))
		}
		w.Header().Set("Link", strings.Join(links, ", "))
	}

	start := (page - 1) * perPage
	if start >= len(items) {
		return []T{}
	}
	return append([]T{}, items[start:min(start+perPage, len(items))]...)
}

// atoiOr parses s as an integer, or returns def when s is empty or not one,
// as GitHub ignores a malformed paging parameter.
func atoiOr(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}
