// Filter forms (form[data-dash-nav]) navigate inside the Dash app, as dcc.Link does: the
// form's fields become the URL's query (empty ones left out), pushed to the history, and
// Dash's router renders that URL with no page reload. A select in a form marked
// data-autosubmit applies on change. Without this script the forms still work as plain GETs.
(function () {
  function navigate(form) {
    var params = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (value !== "") params.append(key, value);
    });
    var query = params.toString();
    var url = form.getAttribute("action") + (query ? "?" + query : "");
    window.history.pushState({}, "", url);
    window.dispatchEvent(new CustomEvent("_dashprivate_pushstate"));
    window.scrollTo(0, 0);
  }
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form[data-dash-nav]")) return;
    event.preventDefault();
    navigate(form);
  });
  document.addEventListener("change", function (event) {
    var field = event.target;
    var form = field.form;
    if (!form || !form.matches("form[data-dash-nav][data-autosubmit]")) return;
    if (field.tagName === "SELECT") navigate(form);
  });
})();
