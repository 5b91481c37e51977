"""Pure rules of the control panel: journeys, who sees what, paging, statistics, hints."""
