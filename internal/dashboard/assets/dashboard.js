// Ferry dashboard: follows /events and swaps in what changed, without a
// reload. The page is complete without this script; it only keeps it current.
//
// Events: "env" and "repo" carry elements whose ids name the elements they
// replace; "refresh" carries the whole of <main>. A closed history panel's
// "Show the last reconciles" link loads its table from /fragment in place
// (without the script it reloads the page with that panel filled). Each event's id is the
// state of the page once it is applied: the browser sends it back as
// Last-Event-ID when it reconnects, and the server sends a refresh if the
// statuses moved on meanwhile.
(function () {
  "use strict";
  var main = document.getElementById("main");
  var live = document.getElementById("live");
  if (!main || !live || !window.EventSource || !window.HTMLTemplateElement) {
    return;
  }

  function setLive(state, text) {
    live.dataset.live = state;
    live.textContent = text;
  }

  // ago mirrors the server's wording (view.go, ago).
  function ago(iso) {
    var s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
    if (s < 10) return "just now";
    if (s < 60) return Math.floor(s) + "s ago";
    if (s < 3600) return Math.floor(s / 60) + "m ago";
    if (s < 48 * 3600) return Math.floor(s / 3600) + "h ago";
    return Math.floor(s / 86400) + "d ago";
  }
  function tick(root) {
    var times = root.querySelectorAll("time[data-ago]");
    for (var i = 0; i < times.length; i++) {
      if (times[i].dateTime) times[i].textContent = ago(times[i].dateTime);
    }
  }

  // detailsIn lists root's <details> that have ids, root included.
  function detailsIn(root) {
    var list = Array.prototype.slice.call(root.querySelectorAll("details[id]"));
    if (root.nodeType === 1 && root.matches("details[id]")) list.push(root);
    return list;
  }
  // keepOpen carries what the reader opened or closed over to the new elements.
  function keepOpen(from, to) {
    var open = {};
    detailsIn(from).forEach(function (d) { open[d.id] = d.open; });
    detailsIn(to).forEach(function (d) {
      if (Object.prototype.hasOwnProperty.call(open, d.id)) d.open = open[d.id];
    });
  }

  function parse(html) {
    var t = document.createElement("template");
    t.innerHTML = html;
    return t.content;
  }

  var source;
  function connect(state) {
    source = new EventSource("events?state=" + encodeURIComponent(state));
    source.onopen = function () { setLive("on", "Live: changes appear as they happen."); };
    source.onerror = function () { setLive("retry", "Connection lost: reconnecting…"); };
    source.addEventListener("env", swap);
    source.addEventListener("repo", swap);
    source.addEventListener("refresh", function (e) {
      var body = parse(e.data);
      keepOpen(main, body);
      main.replaceChildren(body);
      main.dataset.state = e.lastEventId;
      main.querySelectorAll("details[open] a[data-load]").forEach(function (a) { load(a); });
    });
  }

  // replace swaps in each element of html for the one with its id (the
  // cells of a table.frag each count as one); it returns false if one has
  // no counterpart on the page.
  function replace(html) {
    var elements = [];
    Array.prototype.forEach.call(parse(html).children, function (el) {
      if (el.matches("table.frag")) elements.push.apply(elements, el.querySelectorAll("td[id]"));
      else elements.push(el);
    });
    for (var i = 0; i < elements.length; i++) {
      var el = elements[i];
      var old = el.id && document.getElementById(el.id);
      if (!old) return false;
      keepOpen(old, el);
      old.replaceWith(el);
    }
    return true;
  }

  function swap(e) {
    if (!replace(e.data)) {
      // The page and the stream disagree: ask for the whole page.
      source.close();
      connect("");
      return;
    }
    main.dataset.state = e.lastEventId;
  }

  // load fills a closed panel from /fragment. An event that arrived while
  // the fragment was on its way may be newer than it: then load once more.
  function load(a, again) {
    var state = main.dataset.state;
    fetch("fragment" + a.search, { headers: { Accept: "text/html" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        if (!replace(html)) location.href = a.href;
        else if (main.dataset.state !== state && !again) load(a, true);
      })
      .catch(function () { location.href = a.href; });
  }
  document.addEventListener("click", function (e) {
    var a = e.target.closest && e.target.closest("a[data-load]");
    if (!a || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    load(a);
  });

  connect(main.dataset.state || "");
  setInterval(function () { tick(document); }, 10000);
})();
