/* Enter in a slider's number box applies the number.
 *
 * With updatemode="mouseup" (every slider here: a drag must not recompute on each pixel), Dash's
 * slider commits its number box on blur only, so typing 20 and Enter moved the thumb but left
 * the figures on the old value.  Enter now commits the box the same way, keeping the focus there.
 */
document.addEventListener("keydown", function (event) {
    var box = event.target;
    if (event.key !== "Enter" || !box.matches || !box.matches("input.dash-range-slider-input")) {
        return;
    }
    box.blur();
    box.focus();
}, true);
