"""The AI middle platform: models that read what citizens report, and evaluations anyone can rerun."""
