"""What the console reports and prunes over time: the weekly digest, the retention redactor and
the overview's delivery charts."""
