// Refreshes in place, without a reload, every element marked data-live-refresh="<seconds>":
// it fetches this page again and swaps in the element with the same data-testid, so a
// scrolled page stays where it is and a failed fetch keeps the last good view. An element
// with data-live-while="<status> ..." stops refreshing once its data-status leaves that list,
// and the page is loaded once more so everything on it shows the status it ended in.
// A <details> with a data-testid keeps whether it is open.
// A file, not an inline script: the Content-Security-Policy runs scripts from this origin.
(function () {
  document.querySelectorAll("[data-live-refresh]").forEach((element) => {
    const selector = `[data-testid="${element.dataset.testid}"]`;
    const seconds = Number(element.dataset.liveRefresh) || 5;
    const timer = setInterval(async () => {
      try {
        const response = await fetch(window.location.href, {credentials: "same-origin"});
        if (!response.ok) return;
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.querySelector(selector);
        const shown = document.querySelector(selector);
        if (!fresh || !shown) return;
        // A <details> someone opened stays open across the swap.
        shown.querySelectorAll("details[data-testid][open]").forEach((open) => {
          const same = fresh.querySelector(`details[data-testid="${open.dataset.testid}"]`);
          if (same) same.open = true;
        });
        shown.replaceWith(fresh);
        const live = (fresh.dataset.liveWhile || "").split(" ").filter(Boolean);
        if (live.length && !live.includes(fresh.dataset.status)) {
          // Finished: the whole page again, so its heading, status and buttons say the same
          // as the live line (the finished page has no live line to refresh).
          clearInterval(timer);
          window.location.reload();
        }
      } catch (error) { /* offline for a moment: try again next tick */ }
    }, seconds * 1000);
  });
})();
