export interface ErrorBody {
  errors?: { code: string; message: string; detail?: unknown }[];
}
