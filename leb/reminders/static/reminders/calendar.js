// "Copy link" buttons: copy the text field named by data-copy.
(function () {
  "use strict";
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var field = document.getElementById(button.getAttribute("data-copy"));
      if (!field) {
        return;
      }
      var done = function () {
        button.textContent = button.getAttribute("data-copied");
      };
      if (navigator.clipboard && navigator.clipboard.writeText) {
        navigator.clipboard.writeText(field.value).then(done, function () {
          field.select();
        });
      } else {
        field.select();
        document.execCommand("copy");
        done();
      }
    });
  });
})();
