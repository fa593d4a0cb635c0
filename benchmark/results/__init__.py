"""What results become: the store of records, statistics, the paper's numbers, boards and their renderings."""
