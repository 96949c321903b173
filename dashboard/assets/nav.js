// Navigation inside the Dash app for markup blocks (dashboard/markup.py), as dcc.Link does it:
// push the URL to the history and tell Dash's router, which renders that page, no reload.
// - a[data-link]: a plain click (no modifier key, main button) navigates in the app; with a
//   modifier the browser does what it always does (new tab, ...).
// - form[data-dash-nav]: its fields become the URL's query (empty ones left out); in a form
//   marked data-autosubmit a changed select applies at once. Without this script both work
//   as ordinary links and GET forms, with a page load.
(function () {
  function go(url) {
    window.history.pushState({}, "", url);
    window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
    window.scrollTo(0, 0);
  }
  function submit(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (value !== "") params.append(key, value);
    });
    var query = params.toString();
    go(form.getAttribute("action") + (query ? "?" + query : ""));
  }
  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0) return;
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    var a = event.target.closest && event.target.closest("a[data-link]");
    if (!a) return;
    event.preventDefault();
    go(a.getAttribute("href"));
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-dash-nav]")) return;
    event.preventDefault();
    submit(form);
  });
  document.addEventListener("change", function (event) {
    var field = event.target;
    var form = field.form;
    if (!form || !form.matches("form[data-dash-nav][data-autosubmit]")) return;
    if (field.tagName === "SELECT") submit(form);
  });
})();
