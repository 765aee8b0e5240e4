// The main menu is a <details> disclosure that works without this file. This
// only adds comforts: Escape or a tap outside closes it on a phone, and on a
// wide screen in a browser without ::details-content it is kept open.
(function () {
  "use strict";
  var menu = document.querySelector("[data-nav-menu]");
  if (!menu) {
    return;
  }
  var summary = menu.querySelector("summary");
  var narrow = window.matchMedia("(max-width: 480px)");
  var styled = window.CSS && CSS.supports && CSS.supports("selector(::details-content)");

  function fit() {
    if (!narrow.matches && !styled) {
      menu.open = true;
    }
    menu.classList.toggle("is-wide", !narrow.matches);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && menu.open && narrow.matches) {
      menu.open = false;
      summary.focus();
    }
  });
  document.addEventListener("click", function (event) {
    if (menu.open && narrow.matches && !menu.contains(event.target)) {
      menu.open = false;
    }
  });
  if (narrow.addEventListener) {
    narrow.addEventListener("change", fit);
  }
  fit();
})();
